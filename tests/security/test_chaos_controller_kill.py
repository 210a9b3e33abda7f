"""Chaos: SIGKILL the controller in the middle of a burst of creates and deletes, restart it, and count.

The controller runs as a real `clawpen controller` process on a temporary home and the real engine.
A burst of agent specs arrives; the controller is killed while it is creating their containers; more
specs arrive and some are deleted while no controller runs; a new controller starts (the lease of
the dead one is free at once). Once it has converged: no agent has two containers (duplicates), no
container belongs to a deleted or unknown agent (orphans), and every spec written is still there
with a container (lost specs) — all expected 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import docker
import pytest

from controller.plan import LABEL_INSTANCE, LABEL_NAME, LABEL_NAMESPACE
from controller.resources import API_VERSION, Agent, parse_resource
from controller.settings import Settings
from controller.wiring import open_store
from tests.conftest import unique_instance
from tests.security.conftest import cleanup_instance

pytestmark = pytest.mark.docker

FIRST_WAVE = 6
SECOND_WAVE = 3
DELETED = ("c1", "c4")


def manifest(name: str) -> Agent:
    spec = {"provider": "ollama", "resources": {"memoryMB": 64, "cpu": 0.25}}  # keyless: a missing key is Failed
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": spec})


def start_controller(home: Path, instance: str, image: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLAWPEN_HOME": str(home),
        "CLAWPEN_INSTANCE": instance,
        "CLAWPEN_IMAGE": image,
        "CLAWPEN_RESYNC_SECONDS": "2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "controller", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def containers_by_key(client: docker.DockerClient, instance: str) -> Counter[str]:
    found = client.api.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"})  # no inspect race
    return Counter(f"{c['Labels'].get(LABEL_NAMESPACE)}/{c['Labels'].get(LABEL_NAME)}" for c in found)


async def until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_kill_the_controller_mid_burst(
    tmp_path: Path, docker_client: docker.DockerClient, agent_image: str
) -> None:
    instance = unique_instance("tchaos")
    home = tmp_path / "home"
    store = open_store(Settings(home=home, instance=instance))
    controller = start_controller(home, instance, agent_image)
    try:
        for i in range(FIRST_WAVE):
            await store.create(manifest(f"c{i}"))

        async def some_created() -> bool:
            return sum(containers_by_key(docker_client, instance).values()) >= 2

        await until(some_created, 90, "the first containers of the burst")
        controller.send_signal(signal.SIGKILL)  # mid-burst: some containers exist, others are being made
        controller.wait()
        for i in range(FIRST_WAVE, FIRST_WAVE + SECOND_WAVE):
            await store.create(manifest(f"c{i}"))
        for name in DELETED:
            await store.delete(Agent, name)
        controller = start_controller(home, instance, agent_image)
        wanted = {f"default/c{i}" for i in range(FIRST_WAVE + SECOND_WAVE)} - {f"default/{n}" for n in DELETED}

        async def converged() -> bool:
            return set(containers_by_key(docker_client, instance)) == wanted

        await until(converged, 120, "the restarted controller to converge")
        await asyncio.sleep(3)  # one more resync: nothing may change any more
        counts = containers_by_key(docker_client, instance)
        specs = {a.key for a in await store.list(Agent)}
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        orphans = sum(n for key, n in counts.items() if key not in specs)
        lost = len(wanted - specs) + len(specs - set(counts))
        assert (duplicates, orphans, lost) == (0, 0, 0), counts
        assert specs == wanted
    finally:
        if controller.poll() is None:
            controller.terminate()
            controller.wait(30)
        await store.close()
        cleanup_instance(docker_client, instance)
