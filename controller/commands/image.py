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
    build.add_argument(
        "--program",
        choices=("auto", "clawpen", "openclaw", "all"),
        default="auto",
        help="which agent program's image: auto (default) builds clawpen/agent, and the OpenClaw image "
        "too when an agent in the store runs OpenClaw",
    )
    build.set_defaults(handler=_build)


def _openclaw_wanted(settings: Settings) -> bool:
    """Does any agent in the store run OpenClaw? (A store that cannot be read wants nothing.)"""
    import asyncio

    from controller.catalog import load_catalog
    from controller.resources import Agent
    from controller.translate import program_for
    from controller.wiring import open_store

    async def scan() -> bool:
        store = open_store(settings)
        try:
            agents = await store.list(Agent)
        finally:
            await store.close()
        catalog = load_catalog(settings.templates_dir)
        return any(program_for(agent, catalog).name == "openclaw" for agent in agents)

    try:
        return asyncio.run(scan())
    except Exception:  # noqa: BLE001 - no store yet, or not readable: nothing asks for OpenClaw
        return False


def _build(args: argparse.Namespace) -> int:
    from controller.image import ImageBuildError, build_agent_image

    wheels: Path | None = Path(args.wheels) if args.wheels else None
    if wheels is not None and not wheels.is_dir():
        raise ImageBuildError(f"--wheels: {wheels} is not a directory")
    settings = Settings.from_env()
    progress = lambda line: print(line, flush=True)  # noqa: E731
    if args.program in ("auto", "clawpen", "all"):
        tag = args.tag or settings.image
        build_agent_image(tag, force=args.force, base=args.base, wheel_dir=wheels, progress=progress)
    if args.program in ("openclaw", "all") or (args.program == "auto" and _openclaw_wanted(settings)):
        from controller.programs.images import build_openclaw_image

        build_openclaw_image(force=args.force, progress=progress)
    return 0
