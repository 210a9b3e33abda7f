"""Benchmark: authenticated `GET /api/agents` (100 agents in the file store) against a bare Starlette route.

Both servers run under uvicorn in their own processes, in the same run and on the same machine; the
bare route answers the very same JSON bytes from memory, so the difference is what the gateway adds:
token verification, the middleware, reading 100 agents from the store and serializing them.

    python bench/gateway.py [--agents 100] [--requests 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSWORD = "benchmark password 123"


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _settings(home: Path) -> Any:
    from controller.settings import Settings

    return Settings(home=home, instance=f"bench-{uuid.uuid4().hex[:6]}")


def serve_gateway(home: str, ports: Any) -> None:
    import uvicorn

    from api.app import create_app
    from controller.wiring import open_catalog, open_runtime, open_store

    settings = _settings(Path(home))
    app = create_app(settings, open_store(settings), open_runtime(settings), open_catalog(settings), env={})
    sock = _socket()
    ports.put(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def serve_bare(body: bytes, ports: Any) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def agents(request: Request) -> Response:
        return Response(body, media_type="application/json")

    sock = _socket()
    ports.put(sock.getsockname()[1])
    app = Starlette(routes=[Route("/api/agents", agents)])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


async def seed(home: Path, count: int) -> None:
    from api.auth import AdminPassword
    from controller.resources import Agent, AgentSpec, ObjectMeta, Resources
    from controller.wiring import open_store

    AdminPassword(home).set(PASSWORD)
    store = open_store(_settings(home))
    for i in range(count):
        spec = AgentSpec(
            template="coding-assistant",
            provider="openai",
            model="gpt-4o",
            resources=Resources(memory_mb=1024, cpu=1.0),
            env={"LOG_LEVEL": "info"},
            project=f"p{i % 5}",
            tags=["bench"],
        )
        await store.create(Agent(metadata=ObjectMeta(name=f"agent-{i:03d}"), spec=spec))
    await store.close()


async def store_list_ms(home: Path, rounds: int = 30) -> float:
    """The file store's own share: listing the agents in-process, no HTTP."""
    from controller.resources import Agent
    from controller.wiring import open_store

    store = open_store(_settings(home))
    await store.list(Agent, "default")
    started = time.perf_counter()
    for _ in range(rounds):
        await store.list(Agent, "default")
    elapsed = (time.perf_counter() - started) / rounds * 1000
    await store.close()
    return elapsed


def sequential(url: str, headers: dict[str, str], n: int) -> list[float]:
    times = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(max(20, n // 20)):  # warm-up: connection, caches
            client.get(url).raise_for_status()
        for _ in range(n):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - started)
    return times


async def concurrent(url: str, headers: dict[str, str], n: int, width: int) -> float:
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=httpx.Limits(max_connections=width)) as client:
        remaining = n

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                (await client.get(url)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(width)))
        return n / (time.perf_counter() - started)


def report(name: str, times: list[float], rps: float) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    row = {
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[int(len(ms) * 0.95) - 1],
        "p99_ms": ms[int(len(ms) * 0.99) - 1],
        "mean_ms": statistics.fmean(ms),
        "seq_rps": len(ms) / (sum(ms) / 1000),
        "conc_rps": rps,
    }
    print(
        f"{name:<34} p50 {row['p50_ms']:6.2f} ms  p95 {row['p95_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms  "
        f"sequential {row['seq_rps']:7.0f} req/s  concurrent {row['conc_rps']:7.0f} req/s"
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clawpen-bench-") as tmp:
        home = Path(tmp)
        asyncio.run(seed(home, args.agents))
        ctx = mp.get_context("spawn")
        ports: Any = ctx.Queue()
        gateway = ctx.Process(target=serve_gateway, args=(str(home), ports), daemon=True)
        gateway.start()
        gw_url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        for _ in range(100):
            try:
                token = httpx.post(f"{gw_url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        body = httpx.get(f"{gw_url}/api/agents", headers=headers).content
        assert len(httpx.get(f"{gw_url}/api/agents", headers=headers).json()) == args.agents
        bare = ctx.Process(target=serve_bare, args=(body, ports), daemon=True)
        bare.start()
        bare_url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        time.sleep(0.5)
        try:
            print(
                f"{args.agents} agents, {len(body)} bytes per answer, {args.requests} sequential requests, "
                f"concurrency {args.concurrency} for the throughput run"
            )
            rows = {}
            for name, url, hdrs in (
                ("bare Starlette route (same body)", f"{bare_url}/api/agents", {}),
                ("gateway GET /api/agents (auth)", f"{gw_url}/api/agents", headers),
            ):
                times = sequential(url, hdrs, args.requests)
                rps = asyncio.run(concurrent(url, hdrs, args.requests, args.concurrency))
                rows[name] = report(name, times, rps)
            gw, base = rows["gateway GET /api/agents (auth)"], rows["bare Starlette route (same body)"]
            listing = asyncio.run(store_list_ms(home))
            print(
                f"gateway adds {gw['p50_ms'] - base['p50_ms']:.2f} ms at p50 "
                f"({gw['p50_ms'] / base['p50_ms']:.1f}x the bare route); of that, FileStore.list of "
                f"{args.agents} agents takes {listing:.2f} ms in-process, leaving "
                f"{gw['p50_ms'] - base['p50_ms'] - listing:.2f} ms for auth, middleware and serialization"
            )
        finally:
            for proc in (gateway, bare):
                proc.terminate()
                proc.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
