"""The operator driving a Docker host: Agents are custom resources (here in kmock), the workload is
a real container on the local engine (CLAWPEN_RUNTIME=docker). Creating the Agent starts the
container through the real reconcile core; deleting it removes the container before kopf
releases our finalizer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import pytest

from controller import operator
from controller.catalog import load_catalog
from controller.kube.client import api_client_for
from controller.reconcile import Reconciler
from controller.resources import Agent, AgentStatus
from controller.runtime.docker import DockerRuntime
from controller.settings import REPO_ROOT
from controller.store.kube import KubeStore
from tests.conftest import unique_instance
from tests.support.kopf_kmock import AGENTS, declare_agents, running_operator

pytestmark = pytest.mark.docker



async def eventually(check: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def docker_plane(
    kmock: kmock.KubernetesEmulator, agent_image: str, tmp_path: Path
) -> AsyncIterator[tuple[KubeStore, DockerRuntime]]:
    declare_agents(kmock)
    instance = unique_instance("kop")
    store = KubeStore(api_client_for(str(kmock.url)))
    runtime = DockerRuntime(instance, secrets_root=tmp_path / "secrets")
    reconciler = Reconciler(
        store,
        runtime,
        load_catalog(REPO_ROOT / "templates"),
        instance=instance,
        image=agent_image,
        environ={},
    )
    ctx = operator.OperatorContext(reconciler=reconciler, runtime=runtime, resync_seconds=1.0)

    try:
        async with running_operator(ctx, kmock):
            yield store, runtime
    finally:
        with contextlib.suppress(Exception):
            await runtime.remove("default/finn", volumes=True)
        with contextlib.suppress(Exception):
            await runtime.remove_network()
        await runtime.close()
        await store.close()


async def test_agent_resource_runs_a_container_and_delete_removes_it(
    docker_plane: tuple[KubeStore, DockerRuntime], kmock: kmock.KubernetesEmulator
) -> None:
    store, runtime = docker_plane
    kmock.objects[AGENTS, "default", "finn"] = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "finn", "namespace": "default", "resourceVersion": "1", "uid": "uid-finn"},
        "spec": {"provider": "ollama", "model": "llama3.2"},
    }
    await store.update_status(Agent, "finn", AgentStatus())  # kmock announces the object on the watch

    async def running() -> bool:
        return (await runtime.observe("default/finn")).running

    await eventually(running, what="the agent's container to run")

    def status() -> dict[str, Any]:
        return dict(kmock.objects[AGENTS, "default", "finn"].get("status") or {})

    await eventually(lambda: status().get("endpoint", "").startswith("http://127.0.0.1:"), what="an endpoint")
    assert status()["phase"] in ("Starting", "Running")

    await store.delete(Agent, "finn")

    async def gone() -> bool:
        return not (await runtime.observe("default/finn")).exists

    await eventually(gone, what="the container to be removed")
    await eventually(lambda: kmock.objects[AGENTS, "default", "finn"].deleted, what="the finalizer released")
