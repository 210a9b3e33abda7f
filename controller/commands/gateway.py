"""`clawpen up`, `clawpen gateway` and `clawpen admin set-password`.

`up` is the embedded default: one process, one event loop, running the reconcile loop and the HTTP
gateway side by side over the same store and runtime objects (so a spec written by the gateway is
seen by the controller's watch without another hop). `gateway` serves the API alone, for setups
where the controller runs elsewhere (kopf in a cluster). The admin password is read from a prompt
or stdin, never from argv, where every user of the machine could read it in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import logging
import socket
import sys
from collections.abc import Iterator
from typing import Any

from controller import presence
from controller.cli import CommandError
from controller.settings import Settings

log = logging.getLogger("clawpen")


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_text, with_controller in (
        ("up", "run the controller and the API gateway in one process (the default way to run)", True),
        ("gateway", "run only the API gateway (a controller runs elsewhere)", False),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=None, help="port to listen on (default 3000)")
        p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
        if with_controller:
            p.add_argument(
                "--standby",
                action="store_true",
                help="if another controller holds this home, wait and take over when it stops (default: refuse)",
            )
        p.set_defaults(handler=run_up if with_controller else run_gateway)

    admin = sub.add_parser("admin", help="administer the gateway's login")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    setpw = admin_sub.add_parser(
        "set-password",
        help="set the admin password (from a prompt, or the first line of stdin; at least 12 characters)",
    )
    setpw.set_defaults(handler=set_password)


# ---- admin set-password -----------------------------------------------------------------------------


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New admin password (at least 12 characters): ")
        if getpass.getpass("Repeat it: ") != first:
            raise CommandError("the two passwords differ; nothing changed")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def set_password(args: argparse.Namespace) -> int:
    from api.auth import AdminPassword, PasswordRuleError

    settings = Settings.from_env()
    password = _read_password()
    admin = AdminPassword(settings.ensure_home())
    try:
        admin.set(password)
    except PasswordRuleError as err:
        raise CommandError(f"{err}; nothing changed") from None
    print(f"admin password set ({admin.path}, mode 0600)")
    return 0


# ---- up / gateway -----------------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a busy port is one clear line, not a half-started server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it Nagle + delayed ACKs add ~40 ms to every keep-alive response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes: dict[str, Any] = {}
    if args.host is not None:
        changes["host"] = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise CommandError(f"--port must be between 0 and 65535 (got {args.port})")
        changes["port"] = args.port
    return dataclasses.replace(settings, **changes) if changes else settings


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises the Ctrl-C/SIGTERM it handled once it has shut down; we finish the
        shutdown ourselves (controller, runtime, store) and exit 0, as a service manager expects."""

        clawpen_app: Any = None

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

        async def shutdown(self, sockets: Any = None) -> None:
            # Watch streams (/api/watch) never end by themselves: end them first, so shutting
            # down does not wait out the graceful timeout for every open dashboard.
            hub = getattr(getattr(self.clawpen_app, "state", None), "watch_hub", None)
            if hub is not None:
                await hub.close()
            await super().shutdown(sockets)

    return Server


def _open_parts(settings: Settings) -> tuple[Any, Any, Any]:
    """Store, runtime and catalog for this installation (CLAWPEN_STORE / CLAWPEN_RUNTIME choose)."""
    from controller.wiring import open_catalog, open_runtime, open_store

    catalog = open_catalog(settings)  # first: a broken catalog fails before anything is opened
    return open_store(settings), open_runtime(settings), catalog


async def serve(
    settings: Settings, *, with_controller: bool, log_level: str = "info", standby: bool = False
) -> None:
    from controller.lease import hold_lease

    async with hold_lease(settings, enabled=with_controller, standby=standby):
        await _serve(settings, with_controller=with_controller, log_level=log_level)


async def _serve(settings: Settings, *, with_controller: bool, log_level: str) -> None:
    import uvicorn

    from api.app import create_app

    _Server = _server_class()

    sock = _listen(settings.host, settings.port)
    store, runtime, catalog = _open_parts(settings)
    try:
        app = create_app(settings, store, runtime, catalog)
        config = uvicorn.Config(
            app,
            log_level=log_level,
            lifespan="on",
            ws="websockets-sansio",
            proxy_headers=False,  # X-Forwarded-For would let any client pick its rate-limit bucket
            server_header=False,
            timeout_graceful_shutdown=5,  # open chats and log streams must not keep Ctrl-C waiting
        )
        server = _Server(config)
        server.clawpen_app = app
        tasks = {asyncio.create_task(server.serve(sockets=[sock]), name="gateway")}
        if with_controller:
            from controller.metrics import record_reconcile
            from controller.wiring import build_controller

            controller = build_controller(settings, store, runtime, catalog)
            controller.on_reconcile = controller.on_reconcile or record_reconcile
            tasks.add(asyncio.create_task(controller.run(), name="controller"))
        where = f"http://{settings.host}:{sock.getsockname()[1]}"
        while not server.started and not any(t.done() for t in tasks):
            await asyncio.sleep(0.02)
        with contextlib.ExitStack() as present:
            if server.started:  # said only once it answers, so scripts may wait for this line
                present.enter_context(presence.announce(settings.home, "gateway", url=where))
                if with_controller:
                    present.enter_context(presence.announce(settings.home, "controller"))
                log.info("clawpen %s on %s (home %s)", "up" if with_controller else "gateway", where, settings.home)
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if with_controller and settings.store == "files":
                # Right for a controller, surprising for a compose user: say it.
                log.info("stopping; agents keep running (and are adopted at the next start): `clawpen down` stops them")
        # Whichever half ends first takes the other down: a gateway without its controller (or the
        # reverse) would look healthy while nothing converges.
        server.should_exit = True
        for task in pending:
            if task.get_name() == "controller":
                task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            err = task.exception()
            if err is not None:
                raise err
    finally:
        sock.close()
        for part in (runtime, store):
            with contextlib.suppress(Exception):
                await part.close()


def _configure_logging(level: str) -> None:
    from controller.commands.controller import configure_logging

    configure_logging(level)


async def run_up(args: argparse.Namespace) -> int:
    _configure_logging(args.log_level)
    await serve(_settings(args), with_controller=True, log_level=args.log_level, standby=args.standby)
    return 0


async def run_gateway(args: argparse.Namespace) -> int:
    _configure_logging(args.log_level)
    await serve(_settings(args), with_controller=False, log_level=args.log_level)
    return 0
