"""gVisor (runsc) vs the default runtime (runc): agent start time and chat latency, in one run.

Usage: python bench/gvisor.py [--runs N] [--chats M]
Needs the runsc runtime registered with Docker (deploy/host/ensure-gvisor.sh). Each run starts one
agent per isolation through DockerRuntime (the real hardened settings, the per-agent token mounted),
alternating runc and runsc so both see the same machine load, and measures:
- apply → /healthz 200 (seconds);
- M non-streamed chat round trips against the fake model server on the host (median ms).
The baseline (runc) is measured in the same run; the ratio is what to look at.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.agent_token import TOKEN_NAME, TOKEN_SCOPE, new_token, token_version  # noqa: E402
from controller.image import build_agent_image  # noqa: E402
from controller.plan import SecretMount, WorkloadPlan  # noqa: E402
from controller.runtime.docker import DockerRuntime  # noqa: E402
from controller.settings import Settings  # noqa: E402
from tests.fakes.model_server import FakeModelServer, Script  # noqa: E402
from tests.support.docker_objects import remove_instance  # noqa: E402

ISOLATIONS = ("default", "gvisor")


async def one(
    runtime: DockerRuntime, http: httpx.AsyncClient, plan: WorkloadPlan, token: str, chats: int
) -> tuple[float, float]:
    t0 = time.monotonic()
    observed = await runtime.apply(plan, {TOKEN_NAME: token.encode()})
    while True:
        if time.monotonic() - t0 > 60:
            raise SystemExit(f"{plan.isolation}: {observed.endpoint}/healthz did not answer within 60 s")
        try:
            if (await http.get(f"{observed.endpoint}/healthz", timeout=0.5)).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.01)
    ready = time.monotonic() - t0
    headers = {"authorization": f"Bearer {token}"}
    body = {"messages": [{"role": "user", "content": "ping"}]}
    latencies = []
    for _ in range(chats):
        t1 = time.monotonic()
        answer = await http.post(f"{observed.endpoint}/v1/chat/completions", json=body, headers=headers, timeout=30)
        answer.raise_for_status()
        latencies.append(time.monotonic() - t1)
    await runtime.remove(plan.key, volumes=True)
    return ready, statistics.median(latencies) * 1000


async def measure(runs: int, chats: int) -> None:
    client = docker.from_env()
    if "runsc" not in (client.info().get("Runtimes") or {}):
        raise SystemExit("no runsc runtime in Docker: run deploy/host/ensure-gvisor.sh first")
    tag = Settings.from_env().image
    build_agent_image(tag, client=client, progress=lambda _: None)
    model = FakeModelServer().start()
    model.default = Script(reply="pong")
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime(instance, client=client)
    results: dict[str, list[tuple[float, float]]] = {i: [] for i in ISOLATIONS}
    try:
        async with httpx.AsyncClient(trust_env=False) as http:
            for run in range(runs):
                for isolation in ISOLATIONS if run % 2 == 0 else tuple(reversed(ISOLATIONS)):
                    token = new_token()
                    plan = WorkloadPlan(
                        namespace="default",
                        name=f"{isolation}-{run}",
                        instance=instance,
                        image=tag,
                        env={
                            "CLAWPEN_API_STYLE": "openai",
                            "CLAWPEN_BASE_URL": model.container_url(),
                            "CLAWPEN_MODEL": "fake-1",
                        },
                        memory_mb=512,
                        cpu=1.0,
                        restart_policy="no",
                        mounts=(),
                        secrets=(SecretMount(TOKEN_NAME, TOKEN_SCOPE, token_version(token)),),
                        isolation=isolation,
                    )
                    results[isolation].append(await one(runtime, http, plan, token, chats))
    finally:
        model.stop()
        remove_instance(client, instance)
        await runtime.close()
    medians = {}
    for isolation, samples in results.items():
        start = statistics.median(s for s, _ in samples)
        chat = statistics.median(c for _, c in samples)
        medians[isolation] = (start, chat)
        print(f"{isolation:8} apply → ready median {start:.3f} s   chat round trip median {chat:.1f} ms  ({runs} runs)")
    (s0, c0), (s1, c1) = medians["default"], medians["gvisor"]
    print(f"gvisor / default: start ×{s1 / s0:.2f}, chat ×{c1 / c0:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chats", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(measure(args.runs, args.chats))


if __name__ == "__main__":
    main()
