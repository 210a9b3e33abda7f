"""Restart and idle benchmark (issue 16, goals 3 and 4): N running agents, then

  idle      controller CPU (this process: controller in-process, no gateway) over IDLE_SECONDS with N
            healthy agents, as % of one core, and its RSS. Goal: ≤ 2 % of a core, ≤ 150 MB.
  restart   a new controller over the same running agents: seconds until every agent has been
            reconciled, containers recreated (goal 0) and status writes (goal 0: no flaps).
            Goal: all adopted within 3 s.

All real: FileStore, DockerRuntime, agent containers (nano preset, keyless provider). Run:
`python bench/restart.py [N] [idle seconds]` (defaults 50 and 60).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.commands.resources import apply_resource  # noqa: E402
from controller.manager import Controller  # noqa: E402
from controller.resources import API_VERSION, Agent, Phase, parse_resource  # noqa: E402
from controller.settings import Settings  # noqa: E402
from controller.wiring import build_controller, open_runtime, open_store  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def all_ready(store, n: int) -> None:  # type: ignore[no-untyped-def]
    while True:
        agents = await store.list(Agent)
        ok = 0
        for a in agents:
            ready = a.status.condition("Ready") if a.status else None
            ok += bool(a.status and a.status.phase == Phase.RUNNING and ready and ready.status == "True")
        if ok >= n:
            return
        await asyncio.sleep(0.5)


async def main(n: int, idle_seconds: float) -> None:
    home = Path(tempfile.mkdtemp(prefix="clawpen-restart-"))
    settings = replace(Settings.from_env({"CLAWPEN_HOME": str(home)}), instance=f"b{uuid.uuid4().hex[:8]}")
    store, runtime = open_store(settings), open_runtime(settings)
    for i in range(n):
        spec = {"provider": "ollama", "resources": {"preset": "nano"}}
        meta = {"name": f"r{i:04d}"}
        await apply_resource(
            store, parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": meta, "spec": spec})
        )

    async def run(controller: Controller) -> asyncio.Task[None]:
        return asyncio.create_task(controller.run())

    first = build_controller(settings, store, runtime)
    task = await run(first)
    try:
        started = time.perf_counter()
        await all_ready(store, n)
        print(f"converge {n}: {time.perf_counter() - started:.1f} s (workers {settings.workers})")
        await asyncio.sleep(5)  # let the last requeues settle
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        print(
            f"idle with {n} Ready agents: controller CPU {100 * cpu:.2f} % of a core over {idle_seconds:.0f} s "
            f"(goal ≤ 2 %), RSS {rss_mb():.0f} MB (goal ≤ 150 MB, whole process incl. benchmark)"
        )

        before = {
            a.key: (a.metadata.resource_version, a.status.container_id if a.status else None)
            for a in await store.list(Agent)
        }
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        second = build_controller(settings, store, runtime)
        started = time.perf_counter()
        task = await run(second)
        await second.ready.wait()
        while second.reconcile_count < n:
            await asyncio.sleep(0.01)
        adopted = time.perf_counter() - started
        await asyncio.sleep(2)
        after = {
            a.key: (a.metadata.resource_version, a.status.container_id if a.status else None)
            for a in await store.list(Agent)
        }
        owned = {o.key: o.container_id for o in await runtime.list_owned()}
        recreated = sum(owned.get(k) != cid for k, (_, cid) in before.items())
        flaps = sum(after[k][0] != rv for k, (rv, _) in before.items())
        print(
            f"restart with {n} running: all adopted in {adopted:.2f} s (goal ≤ 3 s), "
            f"{recreated} recreated, {flaps} status writes (goal 0 and 0)"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for observed in await runtime.list_owned():
            with contextlib.suppress(Exception):
                await runtime.remove(observed.key, volumes=True)
        with contextlib.suppress(Exception):
            await runtime.remove_network()  # type: ignore[attr-defined]
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, float(sys.argv[2]) if len(sys.argv) > 2 else 60))
