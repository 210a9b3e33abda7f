"""Agent image size and start → /healthz-ready time, through DockerRuntime (the real hardened settings).

Usage: python bench/agent_startup.py [--runs N]
Prints the image size and, per run, the seconds from `apply` (create + start) to the first 200 from
/healthz on the published endpoint, and from the container's own StartedAt to that moment.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.image import build_agent_image  # noqa: E402
from controller.plan import WorkloadPlan  # noqa: E402
from controller.runtime.docker import DockerRuntime  # noqa: E402
from controller.settings import Settings  # noqa: E402
from tests.support.docker_objects import remove_instance  # noqa: E402


async def measure(runs: int) -> None:
    client = docker.from_env()
    tag = Settings.from_env().image
    result = build_agent_image(tag, client=client, progress=lambda _: None)
    print(f"image {tag}: {result.size_mb:.1f} MB (base {result.base})")
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime(instance, client=client)
    from_apply, from_started = [], []
    try:
        async with httpx.AsyncClient() as http:
            for i in range(runs):
                plan = WorkloadPlan(
                    namespace="default",
                    name=f"a{i}",
                    instance=instance,
                    image=tag,
                    env={},
                    memory_mb=512,
                    cpu=1.0,
                    restart_policy="no",
                    mounts=(),
                )
                t0 = time.monotonic()
                observed = await runtime.apply(plan)
                while True:
                    if time.monotonic() - t0 > 30:
                        raise SystemExit(f"{observed.endpoint}/healthz did not answer within 30 s")
                    try:
                        # Any answer counts: an agent without a model configured says 503 "unconfigured".
                        response = await http.get(f"{observed.endpoint}/healthz", timeout=0.5)
                        if response.status_code in (200, 503):
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.005)
                ready_wall = datetime.now(UTC)
                from_apply.append(time.monotonic() - t0)
                from_started.append((ready_wall - observed.started_at).total_seconds())
                await runtime.remove(plan.key, volumes=True)
    finally:
        remove_instance(client, instance)
    print(f"apply → ready:     median {statistics.median(from_apply):.3f} s, max {max(from_apply):.3f} s")
    print(f"started → ready:   median {statistics.median(from_started):.3f} s, max {max(from_started):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()
