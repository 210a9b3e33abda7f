"""Benchmark: `GET /api/metrics` with N running agents, and how much it delays other routes meanwhile.

Real gateway (uvicorn in a thread), real Docker engine, N real agent containers. Measured in one run:
the probe route's latency at rest (baseline), then while a cold /api/metrics gathers (the worst probe
latency is the stall other routes see), the cold and the cached /api/metrics times, and 8 concurrent
callers; once with usage read from the engine's stats API (what it was) and once from the cgroup
files (what a local engine uses now), each from cold, on the same agents. The probe is
/api/runtime/status, which asks the engine for its version on the default thread pool, the pool the
reconcile loop and the file store use too.

    python bench/metrics.py [--agents 20] [--sources engine,cgroup]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app  # noqa: E402
from api.usage import UsageCache  # noqa: E402
from controller.plan import LABEL_INSTANCE, WorkloadPlan  # noqa: E402
from controller.resources import Agent, AgentStatus, Phase  # noqa: E402
from controller.runtime.docker import DockerRuntime  # noqa: E402
from controller.runtime.docker_cgroup import CgroupUsage  # noqa: E402
from controller.settings import Settings  # noqa: E402
from controller.wiring import open_catalog, open_store  # noqa: E402
from tests.api.harness import ServerThread  # noqa: E402

PASSWORD = "benchmark password 123"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument(
        "--sources", default="engine,cgroup", help="where usage is read, measured in this order (engine,cgroup)"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="clawpen-bench-metrics-"))
    instance = f"bench-{uuid.uuid4().hex[:6]}"
    settings = Settings(home=home, instance=instance)
    runtime = DockerRuntime(instance, secrets_root=home / "secrets")
    store = open_store(settings)
    app = create_app(settings, store, runtime, open_catalog(settings), env={"CLAWPEN_ADMIN_PASSWORD": PASSWORD})
    server = ServerThread(app).start()
    client = docker.from_env()
    try:
        token = httpx.post(f"{server.url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        print(f"starting {args.agents} agents…", flush=True)
        for i in range(args.agents):
            name = f"m{i}"
            assert http.post("/api/agents", json={"name": name}).status_code == 201
            plan = WorkloadPlan(
                namespace="default",
                name=name,
                instance=instance,
                image=settings.image,
                env={"CLAWPEN_AGENT_NAME": name},
                memory_mb=96,
                cpu=0.25,
                restart_policy="no",
                mounts=(),
            )
            observed = server.call(runtime.apply(plan), timeout=120)
            server.call(store.update_status(Agent, name, AgentStatus(phase=Phase.RUNNING, endpoint=observed.endpoint)))

        time.sleep(10)  # let the agents finish starting (20 Python processes on a small machine)

        def probe() -> float:
            started = time.perf_counter()
            assert http.get("/api/runtime/status").status_code == 200
            return time.perf_counter() - started

        rest = [probe() for _ in range(20)]
        print(f"agents running: {args.agents}")
        print(f"probe /api/runtime/status at rest: median {statistics.median(rest) * 1000:.1f} ms")
        deps = app.state.deps
        sources = {"engine": "the engine's stats API (before)", "cgroup": "cgroup files (after)"}
        for source in args.sources.split(","):
            # Each source starts cold: no summary kept, no earlier sample, no known pids.
            deps.usage = UsageCache()
            runtime.usage_from_cgroups = CgroupUsage()
            runtime.usage_from_cgroups.available = source == "cgroup"
            runtime._stats._previous.clear()
            stalls: list[float] = []
            done = threading.Event()

            def prober(stalls: list[float] = stalls, done: threading.Event = done) -> None:
                while not done.is_set():
                    stalls.append(probe())
                    time.sleep(0.05)

            thread = threading.Thread(target=prober)
            thread.start()
            started = time.perf_counter()
            answer = http.get("/api/metrics")
            cold = time.perf_counter() - started
            done.set()
            thread.join()
            assert answer.status_code == 200, answer.text
            reported = len(answer.json()["agents"])
            started = time.perf_counter()
            http.get("/api/metrics")
            warm = time.perf_counter() - started
            time.sleep(4)  # past the cache
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _: http.get("/api/metrics"), range(8)))
            concurrent = time.perf_counter() - started
            print(f"-- usage from {sources[source]}: reported {reported} of {args.agents} agents")
            print(
                f"   probe during a cold /api/metrics: max {max(stalls, default=0) * 1000:.1f} ms, "
                f"median {statistics.median(stalls or [0]) * 1000:.1f} ms ({len(stalls)} probes)"
            )
            print(f"   /api/metrics cold: {cold:.2f} s; right after (cached): {warm * 1000:.1f} ms")
            print(f"   8 concurrent /api/metrics callers (stale summary refreshed): {concurrent:.2f} s")
    finally:
        server.stop()
        label = f"{LABEL_INSTANCE}={instance}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for volume in client.volumes.list(filters={"label": label}):
            volume.remove(force=True)
        for network in client.networks.list():
            if instance in network.name:
                network.remove()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
