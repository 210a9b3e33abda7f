"""`clawpen controller`: the reconcile loop alone (the gateway is `clawpen up`/`clawpen gateway`)."""

from __future__ import annotations

import argparse
import logging

from controller import presence
from controller.commands._common import settings
from controller.lease import hold_lease
from controller.settings import Settings
from controller.wiring import build_controller, open_runtime, open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("controller", help="run the reconcile loop (file store + Docker by default)")
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--standby",
        action="store_true",
        help="if another controller holds this home, wait and take over when it stops (default: refuse)",
    )
    p.set_defaults(handler=cmd_controller)


def configure_logging(level: str) -> None:
    """Our own loggers at `level`; chatty libraries (every health probe, every file event) only warn."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    if level.lower() != "debug":
        for noisy in ("httpx", "httpcore", "watchfiles", "kubernetes", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


async def cmd_controller(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    cfg = settings()
    async with hold_lease(cfg, standby=args.standby):
        await _run(cfg)
    return 0


async def _run(cfg: Settings) -> None:
    store, runtime = open_store(cfg), open_runtime(cfg)
    controller = build_controller(cfg, store, runtime)
    logging.getLogger("clawpen").info(
        "controller up: store=%s (%s) runtime=%s instance=%s", cfg.store, cfg.home, cfg.runtime, cfg.instance
    )
    try:
        with presence.announce(cfg.home, "controller"):
            await controller.run()
    finally:
        logging.getLogger("clawpen").info("controller stopped; agents keep running: `clawpen down` stops them")
        await runtime.close()
        await store.close()
