"""Idle footprint of `clawpen up` (issue 16 goal 4): N healthy agents, then CPU and RSS at rest.

`clawpen up` (controller + gateway in one process) runs as a user runs it, in a subprocess on a
temporary home with N agents (nano preset, keyless provider: no model is called). Once every agent
is Running and Ready, the process is left alone for a window that spans at least two resyncs
(`--resync`, the default 120 s, unless told otherwise) and its own CPU time (/proc/<pid>/stat, utime
+ stime of the process and any children) and RSS are sampled. Goal: CPU ≤ 2 % of one core, RSS ≤ 150 MB.
This benchmark reads the store files itself to see readiness, so it adds nothing to the measured process.
Everything it creates (containers, volumes, network) carries the instance label and is removed.

    python bench/footprint.py [--agents 200] [--window 300] [--resync 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.commands.resources import apply_resource  # noqa: E402
from controller.resources import API_VERSION, Agent, Phase, parse_resource  # noqa: E402
from controller.store.files import FileStore  # noqa: E402
from tests.support.docker_objects import remove_instance  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found.group(1)) if found else 0
    return total / 1024


async def seed(home: Path, n: int) -> None:
    store = FileStore(home)
    for i in range(n):
        doc = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": f"f{i:04d}"},
               "spec": {"provider": "ollama", "resources": {"preset": "nano"}}}
        await apply_resource(store, parse_resource(doc))
    await store.close()


async def ready_count(home: Path) -> int:
    store = FileStore(home, watch_mode="poll")
    try:
        count = 0
        for agent in await store.list(Agent):
            ready = agent.status.condition("Ready") if agent.status else None
            count += bool(agent.status and agent.status.phase == Phase.RUNNING and ready and ready.status == "True")
        return count
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--window", type=float, default=300.0, help="idle seconds measured")
    parser.add_argument("--resync", type=float, default=120.0, help="CLAWPEN_RESYNC_SECONDS")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds allowed to converge")
    args = parser.parse_args()
    instance = f"fp{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="clawpen-footprint-") as tmp:
        home = Path(tmp)
        asyncio.run(seed(home, args.agents))
        env = {**os.environ, "CLAWPEN_HOME": str(home), "CLAWPEN_INSTANCE": instance,
               "CLAWPEN_ADMIN_PASSWORD": "footprint password 123", "CLAWPEN_RESYNC_SECONDS": str(args.resync)}
        proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "up", "--port", "0"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        assert proc.stdout is not None
        threading.Thread(target=lambda: [lines.append(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        try:
            started = time.monotonic()
            while (ready := asyncio.run(ready_count(home))) < args.agents:
                if proc.poll() is not None or time.monotonic() - started > args.timeout:
                    raise SystemExit(f"{ready}/{args.agents} Ready; clawpen up said:\n" + "".join(lines[-30:]))
                time.sleep(2)
            print(f"{args.agents} agents Running and Ready after {time.monotonic() - started:.0f} s "
                  f"(load average {os.getloadavg()[0]:.2f})")
            time.sleep(10)  # the last probes and status writes settle
            pids = tree(proc.pid)
            cpu0, wall0, peak = cpu_seconds(pids), time.monotonic(), 0.0
            while time.monotonic() - wall0 < args.window:
                time.sleep(5)
                peak = max(peak, rss_mb(tree(proc.pid)))
            pids = tree(proc.pid)
            cpu = (cpu_seconds(pids) - cpu0) / (time.monotonic() - wall0)
            resyncs = int(args.window // args.resync)
            print(f"idle `clawpen up` with {args.agents} Ready agents over {args.window:.0f} s "
                  f"(>= {resyncs} resyncs at {args.resync:.0f} s): CPU {100 * cpu:.2f} % of a core (goal <= 2 %), "
                  f"RSS {rss_mb(pids):.0f} MB now, {peak:.0f} MB peak (goal <= 150 MB); "
                  f"load average {os.getloadavg()[0]:.2f}")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            remove_instance(docker.from_env(), instance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
