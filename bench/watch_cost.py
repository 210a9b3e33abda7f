"""Benchmark: keeping a client current through /api/watch vs polling GET /api/agents once a second.

Same run, same machine, same gateway process (uvicorn, its own process), 200 agents in the file
store, and the same stream of status changes written by a "controller" (a FileStore in this
process, like a controller running apart from the gateway) at --rate changes per second. For each
way of keeping up, with 1 and with --clients clients, it reports the gateway's CPU time (from
/proc), the bytes the clients received, and how stale a client's view is (write → client sees it).
Polling runs first: the watch hub, once started, stays up for the rest of the run.

    python bench/watch_cost.py [--agents 200] [--seconds 20] [--rate 2] [--clients 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gateway import PASSWORD, _settings, seed, serve_gateway  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class Writer:
    """Status changes at a steady rate; remembers when each (agent, message) was written."""

    def __init__(self, home: Path, count: int, rate: float) -> None:
        self.home, self.count, self.rate = home, count, rate
        self.written: dict[tuple[str, str], float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        from controller.resources import Agent, AgentStatus, Phase
        from controller.wiring import open_store

        store = open_store(_settings(self.home))
        n = 0
        while not self.stop.is_set():
            n += 1
            name = f"agent-{random.randrange(self.count):03d}"
            message = f"change {n}"
            await store.update_status(Agent, name, AgentStatus(phase=Phase.RUNNING, message=message))
            self.written[(name, message)] = time.monotonic()
            await asyncio.sleep(1 / self.rate)
        await store.close()


def poll_client(
    url: str, headers: dict[str, str], seconds: float, seen: list[float], sizes: list[int], w: Writer
) -> None:
    known: dict[str, str] = {}
    with httpx.Client(headers=headers, timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            answer = client.get(f"{url}/api/agents")
            sizes.append(len(answer.content))
            now = time.monotonic()
            for agent in answer.json():
                message = agent.get("message") or ""
                if known.get(agent["id"], message) != message and (agent["id"], message) in w.written:
                    seen.append(now - w.written[(agent["id"], message)])
                known[agent["id"]] = message
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


def watch_client(
    url: str, headers: dict[str, str], seconds: float, seen: list[float], sizes: list[int], w: Writer
) -> None:
    end = time.monotonic() + seconds
    with httpx.stream(
        "GET", f"{url}/api/watch?kinds=agents", headers=headers, timeout=httpx.Timeout(10, read=2)
    ) as answer:
        try:
            for line in answer.iter_lines():
                sizes.append(len(line) + 1)
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    obj = event.get("object") or {}
                    key = (obj.get("id"), obj.get("message") or "")
                    if event.get("type") == "MODIFIED" and key in w.written:
                        seen.append(time.monotonic() - w.written[key])
                if time.monotonic() > end:
                    return
        except httpx.ReadTimeout:
            return


def measure(
    kind: str, clients: int, url: str, headers: dict[str, str], pid: int, seconds: float, w: Writer
) -> dict[str, Any]:
    seen: list[float] = []
    sizes: list[int] = []
    target = poll_client if kind == "poll" else watch_client
    before = cpu_seconds(pid)
    threads = [threading.Thread(target=target, args=(url, headers, seconds, seen, sizes, w)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = cpu_seconds(pid) - before
    lag = sorted(seen) or [float("nan")]
    row = {
        "cpu_s": cpu,
        "cpu_pct": cpu / seconds * 100,
        "kib": sum(sizes) / 1024,
        "lag_p50_ms": statistics.median(lag) * 1000,
        "lag_p95_ms": lag[int(len(lag) * 0.95) - 1 if len(lag) > 1 else 0] * 1000,
    }
    label = "poll GET /api/agents 1/s" if kind == "poll" else "watch /api/watch (SSE)"
    print(
        f"{label:<26} x{clients:<3} gateway CPU {row['cpu_s']:6.2f} s ({row['cpu_pct']:5.1f}% of a core)  "
        f"received {row['kib']:9.1f} KiB  write→client p50 {row['lag_p50_ms']:7.1f} ms  p95 {row['lag_p95_ms']:7.1f} ms"
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=2.0, help="status changes per second")
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clawpen-bench-") as tmp:
        home = Path(tmp)
        asyncio.run(seed(home, args.agents))
        ctx = mp.get_context("spawn")
        ports: Any = ctx.Queue()
        gateway = ctx.Process(target=serve_gateway, args=(str(home), ports), daemon=True)
        gateway.start()
        url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        for _ in range(100):
            try:
                token = httpx.post(f"{url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        assert gateway.pid is not None
        writer = Writer(home, args.agents, args.rate)
        writer.thread.start()
        try:
            print(f"{args.agents} agents, {args.rate:g} status changes/s, {args.seconds:g} s per row")
            idle_before = cpu_seconds(gateway.pid)
            time.sleep(args.seconds / 2)
            idle = (cpu_seconds(gateway.pid) - idle_before) / (args.seconds / 2) * 100
            print(f"{'no client (baseline)':<31} gateway CPU {idle:5.1f}% of a core")
            rows = {}
            for kind in ("poll", "watch"):  # poll first: the watch hub stays up once started
                for clients in (1, args.clients):
                    rows[(kind, clients)] = measure(kind, clients, url, headers, gateway.pid, args.seconds, writer)
            for clients in (1, args.clients):
                p, w = rows[("poll", clients)], rows[("watch", clients)]
                print(
                    f"{clients} client(s): watch uses {w['cpu_s'] / max(p['cpu_s'], 1e-9):.2f}x the CPU and "
                    f"{w['kib'] / max(p['kib'], 1e-9):.3f}x the bytes of polling, and is "
                    f"{p['lag_p50_ms'] / max(w['lag_p50_ms'], 1e-9):.0f}x fresher at p50"
                )
        finally:
            writer.stop.set()
            writer.thread.join(5)
            gateway.terminate()
            gateway.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
