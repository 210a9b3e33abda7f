"""Wake benchmark (issue 16, goal 5): wake → first byte vs the same request to a running agent.

All real: FileStore, DockerRuntime, the controller in-process, the gateway with a Docker runtime,
the agent in its container, the fake model on the host. Each round sends one chat message over the
gateway's WebSocket and times the first delta frame, for:

  running   the agent is running (the baseline)
  paused    the agent was suspended the way spec.idle does it (docker pause); the gateway unpauses it
  stopped   the alternative we did not choose: docker stop, then start + wait for /healthz + chat

Goal: paused ≤ 1.5 × running + 300 ms. Run: `python bench/wake.py [rounds]` (default 10).
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.commands.resources import apply_resource  # noqa: E402
from controller.resources import API_VERSION, Agent, parse_resource  # noqa: E402
from controller.settings import Settings  # noqa: E402
from controller.wiring import build_controller, open_runtime, open_store  # noqa: E402
from tests.api.conftest import login, start_gateway  # noqa: E402
from tests.fakes.model_server import FakeModelServer, Script  # noqa: E402

NAME = "wake"


def model_url(model: FakeModelServer) -> str:
    if Path("/sys/class/net/docker0").exists():
        return model.container_url()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.254", 9))
        return f"http://{probe.getsockname()[0]}:{model.port}/v1"


def first_byte(ws_url: str, token: str) -> float:
    with connect(f"{ws_url}/api/agents/{NAME}/chat?token={token}") as ws:
        started = time.perf_counter()
        ws.send(json.dumps({"content": "hi"}))
        first = None
        while True:
            frame = json.loads(ws.recv(timeout=60))
            if first is None and (frame.get("delta") or frame.get("error")):
                if frame.get("error"):
                    raise RuntimeError(frame)
                first = time.perf_counter() - started
            if frame.get("done") or frame.get("error"):
                assert first is not None
                return first


def wait_healthz(endpoint: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{endpoint}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise TimeoutError(endpoint)


async def main(rounds: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="clawpen-wake-"))
    settings = replace(Settings.from_env({"CLAWPEN_HOME": str(home)}), instance=f"b{uuid.uuid4().hex[:8]}")
    store, runtime = open_store(settings), open_runtime(settings)
    model = FakeModelServer().start()
    model.default = Script(reply="awake and answering")
    spec = {"provider": "ollama", "baseURL": model_url(model), "model": "fake-1", "idle": {"suspendAfter": "1h"}}
    agent = parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": NAME}, "spec": spec})
    await apply_resource(store, agent)
    controller = build_controller(settings, store, runtime)
    task = asyncio.create_task(controller.run())
    gateway = start_gateway(home, runtime=open_runtime(settings), instance=settings.instance)
    key = f"default/{NAME}"
    times: dict[str, list[float]] = {"running": [], "paused": [], "stopped": []}
    try:
        async def running() -> str:
            while True:
                current = await store.get(Agent, NAME)
                ready = current.status.condition("Ready") if current.status else None
                if current.status and current.status.endpoint and ready and ready.status == "True":
                    return current.status.endpoint
                await asyncio.sleep(0.01)

        endpoint = await running()
        token = login(gateway.url)["access_token"]
        await asyncio.to_thread(first_byte, gateway.ws_url, token)  # warm up
        for _ in range(rounds):
            times["running"].append(await asyncio.to_thread(first_byte, gateway.ws_url, token))
            await runtime.pause(key)  # what the controller does after suspendAfter
            await asyncio.sleep(0.3)
            times["paused"].append(await asyncio.to_thread(first_byte, gateway.ws_url, token))
            await runtime.stop(key)
            started = time.perf_counter()
            await runtime.start(key)
            await asyncio.to_thread(wait_healthz, endpoint)
            await running()  # the gateway relays to a Running agent only once its status says so
            answer = await asyncio.to_thread(first_byte, gateway.ws_url, token)
            times["stopped"].append(time.perf_counter() - started + answer)
            await asyncio.sleep(0.3)
    finally:
        gateway.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for observed in await runtime.list_owned():
            await runtime.remove(observed.key, volumes=True)
        await runtime.remove_network()  # type: ignore[attr-defined]
        await runtime.close()
        model.stop()

    def ms(values: list[float], q: float) -> float:
        return 1000 * statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else 1000 * values[0]

    for what, values in times.items():
        print(f"{what:8s} first byte p50 {1000 * statistics.median(values):7.1f} ms  p90 {ms(values, 90):7.1f} ms")
    run, wake = statistics.median(times["running"]), statistics.median(times["paused"])
    budget = 1.5 * run + 0.3
    print(f"goal: wake ≤ 1.5 × running + 300 ms = {1000 * budget:.1f} ms → {'MET' if wake <= budget else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
