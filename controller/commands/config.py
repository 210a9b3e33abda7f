"""`clawpen config view`: the effective settings, each with where it came from.

Users configure by flags, environment and `claw-pen.toml`; when the three disagree, this is the
one place that says which one won (secret values masked).
"""

from __future__ import annotations

import argparse
import json
import os

from controller.config_file import effective, process_sources


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    config = sub.add_parser("config", help="show the effective configuration")
    actions = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    view = actions.add_parser("view", help="effective settings and their source (flag > env > file > default)")
    view.add_argument("-o", "--output", choices=["table", "json"], default="table", help="output format")
    view.set_defaults(handler=_view)


def _view(args: argparse.Namespace) -> int:
    rows = effective(os.environ, process_sources())
    if args.output == "json":
        print(
            json.dumps(
                {r.setting.file_key: {"env": r.setting.env, "value": r.shown(), "source": r.source} for r in rows},
                indent=2,
            )
        )
        return 0
    width_key = max(len(r.setting.file_key) for r in rows)
    width_value = min(40, max(len(r.shown()) for r in rows))
    print(f"{'KEY':<{width_key}}  {'VALUE':<{width_value}}  SOURCE")
    for r in rows:
        print(f"{r.setting.file_key:<{width_key}}  {r.shown():<{width_value}}  {r.source}")
    print("(command-line flags such as `clawpen up --port` override everything shown here)")
    return 0
