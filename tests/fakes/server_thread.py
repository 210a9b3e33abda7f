"""Run an ASGI app with uvicorn in a background thread: real HTTP for in-process tests."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Literal

import uvicorn


class ServerThread:
    """`with ServerThread(app) as url:` serves `app` on an ephemeral port until the block ends."""

    def __init__(self, app: Any, host: str = "127.0.0.1", lifespan: Literal["auto", "on", "off"] = "on"):
        self.app, self.host, self.lifespan = app, host, lifespan
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets it recognises as TCP,
        # and without it every keep-alive response waits ~40 ms for Nagle.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan=self.lifespan, http="h11", loop="asyncio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server for {self.app!r} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start().url

    def __exit__(self, *exc: object) -> None:
        self.stop()
