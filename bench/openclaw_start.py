"""OpenClaw agent vs our light agent: apply → Ready, and → first chat reply; median of N runs each.

Usage: python bench/openclaw_start.py [--runs 3]
Both programs run through the same path as a real agent: translate() of a manifest (program clawpen
or openclaw, provider openai at the fake model server), DockerRuntime.apply with the real hardened
settings, the program's readiness path polled, then one streamed chat turn through the program's
own chat request with the per-agent bearer token. Also prints the container's memory after the
reply and the image sizes. Only the model is fake (tests/fakes/model_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import uuid
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agent_start import agent_plan, apply_to_first_reply  # noqa: E402
from controller.catalog import load_catalog  # noqa: E402
from controller.image import build_agent_image  # noqa: E402
from controller.programs.images import build_openclaw_image  # noqa: E402
from controller.runtime.docker import DockerRuntime  # noqa: E402
from controller.settings import REPO_ROOT, Settings  # noqa: E402
from tests.fakes.model_server import FakeModelServer, Script  # noqa: E402
from tests.support.docker_objects import remove_instance  # noqa: E402


async def one_run(
    runtime: DockerRuntime, client: docker.DockerClient, program: str, index: int, fake: FakeModelServer, image: str
) -> tuple[float, float, float]:
    name = f"{program}-{index}"
    manifest = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"program": program, "provider": "openai", "model": "fake-model", "baseURL": fake.container_url()},
    }
    plan, values, token = agent_plan(runtime, manifest, load_catalog(REPO_ROOT / "templates"), image)
    observed, ready, replied = await apply_to_first_reply(
        runtime, plan, values, token, ready_within=600, reply_within=300
    )
    container = client.containers.get(observed.container_id or "")
    memory = container.stats(stream=False)["memory_stats"].get("usage", 0) / 1e6
    await runtime.remove(plan.key, volumes=True)
    return ready, replied, memory


async def measure(runs: int) -> None:
    client = docker.from_env()
    light = Settings.from_env().image
    size = build_agent_image(light, client=client, progress=lambda _: None).size_mb
    heavy, _ = build_openclaw_image(client=client, progress=lambda _: None)
    print(f"images: {light} {size:.0f} MB, {heavy} {client.images.get(heavy).attrs['Size'] / 1e6:.0f} MB")
    fake = FakeModelServer().start()
    fake.default = Script(reply="Hello from the bench model.")
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime(instance, client=client)
    try:
        for program in ("clawpen", "openclaw"):
            results = [await one_run(runtime, client, program, i, fake, light) for i in range(runs)]
            ready, replied, memory = (statistics.median(r[i] for r in results) for i in range(3))
            print(
                f"{program:9s} apply → Ready median {ready:6.1f} s, → first reply {replied:6.1f} s, "
                f"memory after reply {memory:5.0f} MB  (runs: "
                + ", ".join(f"{r[0]:.1f}/{r[1]:.1f}" for r in results)
                + ")"
            )
    finally:
        fake.stop()
        remove_instance(client, instance)
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()
