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
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.agent_token import TOKEN_NAME, TOKEN_SCOPE, token_version  # noqa: E402
from controller.catalog import load_catalog  # noqa: E402
from controller.image import build_agent_image  # noqa: E402
from controller.plan import LABEL_INSTANCE  # noqa: E402
from controller.programs import program_named  # noqa: E402
from controller.programs.images import build_openclaw_image  # noqa: E402
from controller.resources import parse_resource  # noqa: E402
from controller.runtime.docker import DockerRuntime, network_name  # noqa: E402
from controller.settings import REPO_ROOT, Settings  # noqa: E402
from controller.translate import translate  # noqa: E402
from tests.fakes.model_server import FakeModelServer, Script  # noqa: E402


class Resolved:
    def __init__(self, scope: str, version: str):
        self.scope, self.version = scope, version


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
    token = secrets.token_urlsafe(32)
    values = {"OPENAI_API_KEY": b"sk-bench", TOKEN_NAME: token.encode()}
    resolved = {"OPENAI_API_KEY": Resolved("global", "1")}
    plan = translate(
        parse_resource(manifest),
        load_catalog(REPO_ROOT / "templates"),
        resolved,
        instance=runtime.instance,
        image=image,
        environ={},
        agent_token=Resolved(TOKEN_SCOPE, token_version(token)),
    )
    chosen = program_named(program)
    t0 = time.monotonic()
    observed = await runtime.apply(plan, values)
    headers = {"Authorization": f"Bearer {token}"}  # every agent program requires its token
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"{name}: {plan.readiness_path} did not answer 200 within 600 s")
            try:
                if (await http.get(f"{observed.endpoint}{plan.readiness_path}")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        ready = time.monotonic() - t0
        request = chosen.chat_request("say hello", "bench", "fake-model")
        async with http.stream(
            "POST", f"{observed.endpoint}{request.path}", json=request.body, headers=headers, timeout=300
        ) as answer:
            assert answer.status_code == 200, answer.status_code
            async for line in answer.aiter_lines():
                if line.startswith("data:") and '"content"' in line:
                    break
        replied = time.monotonic() - t0
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
        label = {"label": f"{LABEL_INSTANCE}={instance}"}
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True)
        for volume in client.volumes.list(filters=label):
            volume.remove(force=True)
        for network in client.networks.list(names=[network_name(instance)]):
            if network.name == network_name(instance):
                network.remove()
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()
