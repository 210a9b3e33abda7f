"""`clawpen image build`: make sure the agent image exists and matches the sources (see controller.image)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from controller.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    image = subparsers.add_parser("image", help="build the agent image")
    image_sub = image.add_subparsers(dest="image_command", required=True, metavar="SUBCOMMAND")
    build = image_sub.add_parser("build", help="build clawpen/agent:<version> (a no-op when nothing changed)")
    build.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    build.add_argument(
        "--base",
        metavar="IMAGE",
        help="base image with Python 3.11 (e.g. python:3.11-slim; pulled when missing); "
        "default: python:3.11-slim when present locally, else one made from Debian packages",
    )
    build.add_argument(
        "--wheels",
        metavar="DIR",
        type=Path,
        default=os.environ.get("CLAWPEN_WHEELS") or None,
        help="install the agent's requirements offline from this wheel directory: `pip download` of "
        "agent/requirements.txt plus `pip download --no-deps` of agent/requirements-nodeps.txt "
        "(default: $CLAWPEN_WHEELS, else the package index)",
    )
    build.add_argument("--tag", help="image tag (default: $CLAWPEN_IMAGE or clawpen/agent:<version>)")
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    from controller.image import ImageBuildError, build_agent_image

    wheels: Path | None = Path(args.wheels) if args.wheels else None
    if wheels is not None and not wheels.is_dir():
        raise ImageBuildError(f"--wheels: {wheels} is not a directory")
    tag = args.tag or Settings.from_env().image
    build_agent_image(
        tag, force=args.force, base=args.base, wheel_dir=wheels, progress=lambda line: print(line, flush=True)
    )
    return 0
