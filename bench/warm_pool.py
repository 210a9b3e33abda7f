"""OpenClaw agents with and without a warm pool, same run: apply → Ready and apply → first reply.

Usage: python bench/warm_pool.py [--runs 2]
Both paths go through what a real agent goes through: translate() of an agent of a template
`pooled-claw` (program openclaw, provider openai at the fake model server), DockerRuntime.apply with
the real hardened settings, the program's readiness path and then its token-checked chat endpoint
polled (Ready = both answer, so a claimed container still on its placeholder config does not
count), then one streamed chat turn. Without a pool, the runtime creates and boots a container.
With one, `--runs` pool containers are started first and waited for (not timed: that is what the
pool does ahead of time), then each agent claims one. Only the model is fake.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agent_start import agent_plan, apply_to_first_reply  # noqa: E402
from controller.catalog import Catalog, Template, load_catalog  # noqa: E402
from controller.plan import WorkloadPlan  # noqa: E402
from controller.programs.images import build_openclaw_image  # noqa: E402
from controller.runtime.docker import DockerRuntime  # noqa: E402
from controller.settings import REPO_ROOT, Settings  # noqa: E402
from controller.warm_pool.shape import pool_plan, shape  # noqa: E402
from tests.fakes.model_server import FakeModelServer, Script  # noqa: E402
from tests.support.docker_objects import remove_instance  # noqa: E402

TEMPLATE = "pooled-claw"


def catalog(size: int) -> Catalog:
    base = load_catalog(REPO_ROOT / "templates")
    template = Template.model_validate(
        {"name": "Pooled", "warmPool": size, "config": {"program": "openclaw", "llm_provider": "openai"}}
    )
    return replace(base, templates={**base.templates, TEMPLATE: template})


async def one_run(runtime: DockerRuntime, name: str, fake: FakeModelServer, image: str) -> tuple[float, float, bool]:
    manifest = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"template": TEMPLATE, "model": "fake-model", "baseURL": fake.container_url()},
    }
    plan, values, token = agent_plan(runtime, manifest, catalog(0), image)
    _, ready_s, replied_s = await apply_to_first_reply(
        runtime, plan, values, token, ready_within=900, reply_within=600, token_checked=("/v1/models",)
    )
    claimed = runtime.claims.get(plan.key) is not None
    await runtime.remove(plan.key, volumes=True)
    return ready_s, replied_s, claimed


async def wait_pool(runtime: DockerRuntime, count: int, wanted: dict[str, tuple[WorkloadPlan, int, str]]) -> float:
    """Fill the pool as the controller's pool task does (one booting slot at a time) until `count` answer."""
    assert runtime.warm_pool is not None
    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=3.0) as http:
        while time.monotonic() - t0 < 1200:
            await asyncio.to_thread(runtime.warm_pool.refill, wanted)
            slots = await asyncio.to_thread(runtime.warm_pool.slots)
            ready = 0
            for slot in slots:
                try:
                    ready += bool(slot.endpoint) and (await http.get(f"{slot.endpoint}/readyz")).status_code == 200
                except httpx.HTTPError:
                    pass
            if ready >= count and len({s.container_id for s in slots} & runtime.warm_pool.warmed()) >= count:
                return time.monotonic() - t0  # booted and warmed up
            await asyncio.sleep(2.0)
    raise SystemExit("the pool did not boot within 1200 s")


def report(label: str, results: list[tuple[float, float, bool]]) -> None:
    ready, replied = statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
    runs = ", ".join(f"{r[0]:.1f}/{r[1]:.1f}{'' if r[2] else ' (not claimed)'}" for r in results)
    print(f"{label:12s} apply → Ready median {ready:7.2f} s, → first reply {replied:7.2f} s  (runs: {runs})")


async def measure(runs: int) -> None:
    client = docker.from_env()
    heavy, _ = build_openclaw_image(client=client, progress=lambda _: None)
    light = Settings.from_env().image
    fake = FakeModelServer().start()
    fake.default = Script(reply="Hello from the bench model.")
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    cold = DockerRuntime(instance, client=client, warm_pool=False)
    warm = DockerRuntime(instance, client=client)
    if warm.warm_pool is None:
        raise SystemExit("the warm pool needs a local engine and root (OpenClaw's secret files are owned by its uid)")
    try:
        print(f"image {heavy}; {runs} run(s) each, one at a time")
        report("no pool", [await one_run(cold, f"cold-{i}", fake, light) for i in range(runs)])
        plan = pool_plan(TEMPLATE, catalog(runs), instance=instance, image=light, environ={})
        assert plan is not None
        booted = await wait_pool(warm, runs, {shape(plan): (plan, runs, TEMPLATE)})
        print(f"pool of {runs} booted in {booted:.0f} s (ahead of time, not part of the figures below)")
        report("warm pool", [await one_run(warm, f"warm-{i}", fake, light) for i in range(runs)])
    finally:
        fake.stop()
        if warm.warm_pool is not None:
            await asyncio.to_thread(warm.warm_pool.drain)
        remove_instance(client, instance)
        await warm.close()
        await cold.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    asyncio.run(measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()
