"""Converge benchmark: N agents applied → all Running and Ready, against bare docker-SDK calls.

Baseline: a plain script that creates and starts the same N hardened containers with the docker
SDK (same image, limits, port publishing, same parallelism) and waits until each answers /healthz.
Claw Pen: the same N agents written as manifests to a file store, reconciled by the controller
(in-process, `workers` = the baseline's parallelism) until every status is Running with Ready=True.
Both run in this process, one after the other, on the same engine.
Run: `python bench/converge.py [N] [rounds] [workers]` (workers: the controller default).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.commands.resources import apply_resource  # noqa: E402
from controller.resources import API_VERSION, Agent, Phase, parse_resource  # noqa: E402
from controller.settings import Settings, default_workers  # noqa: E402
from controller.wiring import build_controller, open_runtime, open_store  # noqa: E402

WORKERS = int(sys.argv[3]) if len(sys.argv) > 3 else default_workers()  # the controller's default


def wait_healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(port)


def baseline(n: int, image: str) -> float:
    client = docker.from_env()
    tag = uuid.uuid4().hex[:8]
    network = client.networks.create(
        f"bench-{tag}", driver="bridge", options={"com.docker.network.bridge.enable_icc": "false"}
    )

    def one(i: int) -> None:
        c = client.containers.run(
            image,
            name=f"bench-{tag}-{i}",
            detach=True,
            environment={"CLAWPEN_AGENT_NAME": f"b{i}", "CLAWPEN_PROVIDER": "ollama", "CLAWPEN_API_STYLE": "openai",
                         "CLAWPEN_BASE_URL": "http://host.docker.internal:11434/v1", "CLAWPEN_MODEL": "llama3.2"},
            mem_limit="512m", nano_cpus=500_000_000, pids_limit=512, user="10001:10001", cap_drop=["ALL"],
            security_opt=["no-new-privileges"], read_only=True, tmpfs={"/tmp": "size=64m"},
            volumes={f"bench-{tag}-{i}-data": {"bind": "/data", "mode": "rw"},
                     f"bench-{tag}-{i}-ws": {"bind": "/workspace", "mode": "rw"}},
            ports={"8080/tcp": ("127.0.0.1", None)}, network=network.name,
            extra_hosts={"host.docker.internal": "host-gateway"}, labels={"bench": tag},
        )
        c.reload()
        wait_healthy(int(c.ports["8080/tcp"][0]["HostPort"]))

    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - started
    for c in client.containers.list(all=True, filters={"label": f"bench={tag}"}):
        c.remove(force=True, v=True)
    for i in range(n):
        for suffix in ("data", "ws"):
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(f"bench-{tag}-{i}-{suffix}").remove(force=True)
    network.remove()
    return elapsed


async def clawpen(n: int, image: str) -> float:
    with tempfile.TemporaryDirectory() as home:
        cfg = replace(Settings.from_env({"CLAWPEN_HOME": home}), instance=f"bench{uuid.uuid4().hex[:6]}",
                      image=image, workers=WORKERS)
        store, runtime = open_store(cfg), open_runtime(cfg)
        controller = build_controller(cfg, store, runtime)
        task = asyncio.create_task(controller.run())
        try:
            started = time.perf_counter()
            for i in range(n):
                doc = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": f"a{i}"},
                       "spec": {"provider": "ollama", "resources": {"preset": "nano"}}}
                await apply_resource(store, parse_resource(doc))
            while True:
                agents = await store.list(Agent)
                ready = [a for a in agents if a.status and a.status.phase == Phase.RUNNING
                         and (c := a.status.condition("Ready")) is not None and c.status == "True"]
                if len(ready) == n:
                    break
                await asyncio.sleep(0.02)
            return time.perf_counter() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for observed in await runtime.list_owned():
                await runtime.remove(observed.key, volumes=True)
            await runtime.close()
            await store.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    image = Settings.from_env().image
    base, ours = [], []
    for _ in range(rounds):
        base.append(baseline(n, image))
        ours.append(asyncio.run(clawpen(n, image)))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"converge N={n} workers={WORKERS} rounds={rounds}")
    print(f"  bare docker SDK : {b:6.2f} s  ({n / b:5.2f} agents/s)  runs={[round(x, 2) for x in base]}")
    print(f"  clawpen         : {o:6.2f} s  ({n / o:5.2f} agents/s)  runs={[round(x, 2) for x in ours]}")
    print(f"  overhead        : {o / b:6.2f}x")


if __name__ == "__main__":
    main()
