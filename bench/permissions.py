"""Benchmark: what the permission guard costs on `GET /api/agents` (100 agents), against the same gateway
with the first wave's authentication-only middleware (verify the JWT, nothing else), in the same run.

Three gateways run under uvicorn in their own processes on one file store: "before" (token check only,
no route matching, no users store, no project filter), "after" as the admin, and "after" as an operator
granted 1 of the 5 projects (the list is filtered to 20 agents, so its answer is smaller). An
in-process figure isolates the guard itself: route matching + credential + permission per request.

    python bench/permissions.py [--agents 100] [--requests 600]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import PASSWORD, _settings, _socket, seed  # noqa: E402


def serve(home: str, before: bool, ports: Any) -> None:
    import uvicorn

    import api.app
    from controller.wiring import open_catalog, open_runtime, open_store

    if before:
        api.app.Guard = AuthOnly  # type: ignore[misc,assignment]
    settings = _settings(Path(home))
    app = api.app.create_app(settings, open_store(settings), open_runtime(settings), open_catalog(settings), env={})
    sock = _socket()
    ports.put(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


class AuthOnly:
    """The first wave's guard: every /api/ path needs a valid access token; nothing else is checked."""

    def __init__(self, app: Any, auth: Any, routes: Any, recheck: float = 0) -> None:
        self.app, self.auth = app, auth

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from api.permissions import Principal, Role

        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            token = dict(scope["headers"]).get(b"authorization", b"")[7:].decode()
            scope["auth"] = self.auth.tokens.verify_access(token)
            scope["clawpen.principal"] = Principal(name="admin", role=Role.ADMIN)
        await self.app(scope, receive, send)


def guard_us(home: Path, token: str, rounds: int = 2000) -> tuple[float, float]:
    """Microseconds per request (in-process): (route matching + permission check, the new part;
    token verification + users-store lookup, mostly the first wave's JWT check)."""
    from api.app import ROUTES
    from api.auth import AuthService
    from api.guard import Guard, authenticate

    auth = AuthService.from_home(home, env={})
    guard = Guard(lambda *a: None, auth, ROUTES)  # type: ignore[arg-type]
    scope = {"type": "http", "method": "GET", "path": "/api/agents", "headers": [], "query_string": b""}
    who = authenticate(auth, token)

    async def decide() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            route, params = guard.match(scope)
            assert route is not None and await guard.missing(scope, route.permission, params, who) is None  # type: ignore[attr-defined]
        return (time.perf_counter() - started) / rounds * 1e6

    started = time.perf_counter()
    for _ in range(rounds):
        authenticate(auth, token)
    return asyncio.run(decide()), (time.perf_counter() - started) / rounds * 1e6


def main() -> int:
    import multiprocessing as mp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--requests", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clawpen-bench-") as tmp:
        home = Path(tmp)
        asyncio.run(seed(home, args.agents))
        from argon2 import PasswordHasher

        from controller.users.store import User, UserStore

        UserStore(home).create(
            User(name="ops", role="operator", projects=["p1"], password_hash=PasswordHasher().hash(PASSWORD))
        )
        ctx = mp.get_context("spawn")
        ports: Any = ctx.Queue()
        urls = {}
        procs = []
        for before in (True, False):
            proc = ctx.Process(target=serve, args=(str(home), before, ports), daemon=True)
            proc.start()
            procs.append(proc)
            urls[before] = f"http://127.0.0.1:{ports.get(timeout=60)}"
        tokens = {}
        for who, body in (("admin", {"password": PASSWORD}), ("ops", {"username": "ops", "password": PASSWORD})):
            for _ in range(100):
                try:
                    tokens[who] = httpx.post(f"{urls[False]}/auth/login", json=body).json()["access_token"]
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        cases = [
            ("before: token check only (admin)", urls[True], tokens["admin"]),
            ("after: guard, admin", urls[False], tokens["admin"]),
            ("after: guard, operator (1 of 5 projects)", urls[False], tokens["ops"]),
        ]
        print(f"{args.agents} agents, {args.requests} sequential GET /api/agents per case (p50 of each)")
        # Interleaved request by request, so load from other processes falls on every case alike.
        clients = [httpx.Client(headers={"Authorization": f"Bearer {t}"}, timeout=30) for _, _, t in cases]
        times: dict[str, list[float]] = {name: [] for name, *_ in cases}
        for i in range(args.requests + 50):
            for (name, url, _), client in zip(cases, clients, strict=True):
                started = time.perf_counter()
                client.get(f"{url}/api/agents").raise_for_status()
                if i >= 50:  # warm-up
                    times[name].append(time.perf_counter() - started)
        p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
        for name, *_ in cases:
            print(f"  {name:<44} p50 {p50[name]:6.2f} ms")
        base = p50[cases[0][0]]
        after = p50[cases[1][0]]
        print(f"guard as admin adds {after - base:+.2f} ms at p50 ({(after / base - 1) * 100:+.1f}%)")
        decide, verify = guard_us(home, tokens["admin"])
        print(f"in-process per request: route match + permission {decide:.1f} us; token + user lookup {verify:.1f} us")
        for proc in procs:
            proc.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
