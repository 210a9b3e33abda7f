"""Benchmark: authenticated `GET /api/agents` with 100 and 1,000 agents against a bare Starlette route.

Both servers run under uvicorn in their own processes, in the same run and on the same machine; the
bare route answers the very same JSON bytes from memory, so the difference is what the gateway adds:
token verification, the middleware, reading the agents from the store and serializing them. Agents
exist in the store only (spec plus a Running status, as the controller would write it): no container.

Issue 16 goal 1, checked at the end: the gateway's req/s at least half the bare route's, sequential
and at concurrency 16, and its p99 at concurrency 50 at most 5x the bare route's. Each figure is the
median of `--rounds` alternating runs (bare, gateway, bare, ...), so a burst of load from elsewhere on
the machine hits both sides alike.

    python bench/gateway.py [--agents 100 1000] [--requests 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
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


async def seed(home: Path, count: int, *, running: bool = False) -> None:
    """`count` agents in the store; with `running`, each with the status a healthy agent has."""
    from api.auth import AdminPassword
    from controller.resources import Agent, AgentSpec, AgentStatus, Condition, ObjectMeta, Phase, Resources
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
        name = f"agent-{i:04d}" if count > 999 else f"agent-{i:03d}"
        created = await store.create(Agent(metadata=ObjectMeta(name=name), spec=spec))
        if running:
            status = AgentStatus(
                phase=Phase.RUNNING,
                observed_generation=created.metadata.generation,
                conditions=[Condition(type="Ready", status="True", reason="Healthy", message="health check passed")],
                endpoint=f"http://127.0.0.1:{20000 + i}",
                restart_count=0,
                plan_hash=uuid.uuid4().hex[:16],
                container_id=uuid.uuid4().hex,
            )
            await store.update_status(Agent, name, status)
    await store.close()


async def store_list_ms(home: Path, rounds: int = 30) -> tuple[float, float]:
    """The file store's own share, in-process, no HTTP: list() (objects of the caller's own) and
    list_shared() (what the list route uses)."""
    from controller.resources import Agent
    from controller.wiring import open_store

    store = open_store(_settings(home))
    figures = []
    for method in (store.list, getattr(store, "list_shared", store.list)):
        await method(Agent, "default")
        started = time.perf_counter()
        for _ in range(rounds):
            await method(Agent, "default")
        figures.append((time.perf_counter() - started) / rounds * 1000)
    await store.close()
    return figures[0], figures[1]


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator shares the 2 cores with the servers,
    so it must cost far less per request than they do (httpx's pool spent more CPU than the bare
    route itself, which flattened every ratio towards 1)."""

    def __init__(self, url: str, headers: dict[str, str]):
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        lines = [f"GET {parsed.raw_path.decode()} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if head[9:12] != b"200":
            raise RuntimeError(f"answer {head[:64]!r}")
        at = head.lower().index(b"content-length:") + 15
        length = int(head[at : head.index(b"\r\n", at)])
        return await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def sequential(url: str, headers: dict[str, str], n: int) -> list[float]:
    conn = Connection(url, headers)
    try:
        for _ in range(max(10, n // 20)):  # warm-up: connection, caches
            await conn.get()
        times = []
        for _ in range(n):
            started = time.perf_counter()
            await conn.get()
            times.append(time.perf_counter() - started)
        return times
    finally:
        conn.close()


async def concurrent(url: str, headers: dict[str, str], n: int, width: int) -> tuple[float, list[float]]:
    """`n` requests over `width` keep-alive connections: (req/s, each request's latency)."""
    conns = [Connection(url, headers) for _ in range(width)]
    remaining = n
    latencies: list[float] = []

    async def worker(conn: Connection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await conn.get()
            latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(conn.get() for conn in conns))  # open the connections first
        started = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in conns))
        return n / (time.perf_counter() - started), latencies
    finally:
        for conn in conns:
            conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q) - 1))]


def measure(url: str, headers: dict[str, str], n: int, width: int, tail_width: int) -> dict[str, float]:
    times = asyncio.run(sequential(url, headers, n))
    rps, _ = asyncio.run(concurrent(url, headers, n, width))
    _, tail = asyncio.run(concurrent(url, headers, n, tail_width))
    return {
        "p50_ms": statistics.median(times) * 1000,
        "seq_rps": len(times) / sum(times),
        "conc_rps": rps,
        "tail_p99_ms": percentile(tail, 0.99) * 1000,
    }


def median_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def show(name: str, row: dict[str, float], width: int, tail_width: int) -> None:
    print(
        f"  {name:<32} p50 {row['p50_ms']:7.2f} ms  sequential {row['seq_rps']:6.0f} req/s  "
        f"c{width} {row['conc_rps']:6.0f} req/s  c{tail_width} p99 {row['tail_p99_ms']:7.2f} ms"
    )


def run_fleet(count: int, args: argparse.Namespace) -> list[tuple[str, float, str, bool]]:
    """Seed `count` agents, measure both servers, return the goal checks."""
    with tempfile.TemporaryDirectory(prefix="clawpen-bench-") as tmp:
        home = Path(tmp)
        started = time.perf_counter()
        asyncio.run(seed(home, count, running=True))
        seeded = time.perf_counter() - started
        time.sleep(2.1)  # past the file cache's racy window, as on a fleet that is not being edited
        ctx = mp.get_context("spawn")
        ports: Any = ctx.Queue()
        gateway = ctx.Process(target=serve_gateway, args=(str(home), ports), daemon=True)
        gateway.start()
        gw_url = f"http://127.0.0.1:{ports.get(timeout=60)}"
        token = ""
        for _ in range(200):
            try:
                token = httpx.post(f"{gw_url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        body = httpx.get(f"{gw_url}/api/agents", headers=headers, timeout=60).content
        assert len(httpx.get(f"{gw_url}/api/agents", headers=headers, timeout=60).json()) == count
        bare = ctx.Process(target=serve_bare, args=(body, ports), daemon=True)
        bare.start()
        bare_url = f"http://127.0.0.1:{ports.get(timeout=60)}"
        time.sleep(0.5)
        assert httpx.get(f"{bare_url}/api/agents").content == body
        try:
            print(
                f"{count} agents (seeded in {seeded:.0f} s), {len(body)} bytes per answer, {args.requests} requests "
                f"per run, {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}"
            )
            runs: dict[str, list[dict[str, float]]] = {"bare": [], "gateway": []}
            for _ in range(args.rounds):
                runs["bare"].append(
                    measure(f"{bare_url}/api/agents", {}, args.requests, args.concurrency, args.tail_concurrency)
                )
                runs["gateway"].append(
                    measure(f"{gw_url}/api/agents", headers, args.requests, args.concurrency, args.tail_concurrency)
                )
            base, gw = median_rows(runs["bare"]), median_rows(runs["gateway"])
            show("bare Starlette route (same body)", base, args.concurrency, args.tail_concurrency)
            show("gateway GET /api/agents (auth)", gw, args.concurrency, args.tail_concurrency)
            listing, shared = asyncio.run(store_list_ms(home))
            print(
                f"  FileStore in-process: list() {listing:.2f} ms, list_shared() {shared:.2f} ms; "
                f"load average now {os.getloadavg()[0]:.2f}"
            )
        finally:
            for proc in (gateway, bare):
                proc.terminate()
                proc.join(5)
    seq = gw["seq_rps"] / base["seq_rps"]
    conc = gw["conc_rps"] / base["conc_rps"]
    tail = gw["tail_p99_ms"] / base["tail_p99_ms"]
    return [
        (f"{count} agents, sequential req/s", seq, ">= 0.50", seq >= 0.5),
        (f"{count} agents, c{args.concurrency} req/s", conc, ">= 0.50", conc >= 0.5),
        (f"{count} agents, c{args.tail_concurrency} p99", tail, "<= 5.0", tail <= 5.0),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tail-concurrency", type=int, default=50)
    args = parser.parse_args()
    checks = []
    for count in args.agents:
        checks += run_fleet(count, args)
    print("goal 1 (gateway vs bare route):")
    for what, ratio, goal, met in checks:
        print(f"  {what:<30} {ratio:5.2f}x  goal {goal}  {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
