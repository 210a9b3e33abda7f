"""`clawpen`: one entry point; each command group lives in controller/commands/<group>.py.

Every command exits 0 on success and non-zero with a one-line message on error: the CLI catches
our own error types and never prints a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from controller import __version__

# Modules under controller/commands that each define register(subparsers).
COMMAND_MODULES = [
    "get",  # get (-w, -l, -o), describe, wait
    "resources",  # apply, diff, delete, start, stop, restart, logs
    "edit",  # edit NAME ($EDITOR, validated on save)
    "status",  # status (controller/gateway up? where? how many agents?), down, top
    "explain",  # explain agent.spec.resources (from the pydantic models)
    "completion",  # completion bash|zsh|fish
    "controller",  # controller
    "image",  # image build
    "gateway",  # up (controller + gateway), gateway, admin set-password
    "chat",  # chat NAME: interactive streamed chat with an agent
    "volumes",  # volumes list|prune: agent volumes, deleted agents' included
    "secrets",  # secrets set, list, delete, rotate-key
    "snapshot",  # snapshot create, list, restore, delete, clone; export; import
    "operator",  # operator (kopf, Kubernetes mode)
    "users",  # users add, list, set-role, set-password, disable, enable, delete
    "config",  # config view: effective settings and where each came from
    "team",  # team classify NAME MESSAGE
    "remote",  # login --server URL, logout: resource commands then act through a gateway, with your role
]


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int | None] | int | None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clawpen", description="Run AI agents as declarative resources.")
    parser.add_argument("--version", action="version", version=f"clawpen {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="claw-pen.toml to read (default: $CLAWPEN_CONFIG, else $CLAWPEN_HOME/claw-pen.toml when present)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"controller.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"controller.commands.{name}":
                continue  # a command group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from pathlib import Path

        from controller.commands.remote import route
        from controller.config_file import load_process_config

        load_process_config(Path(args.config) if args.config else None)
        handler: Handler = route(args) or args.handler  # through a gateway when one is set
        result = handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's one place that turns errors into a line
        from controller.errors import user_message

        print(f"error: {user_message(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
