"""Kernel isolation as an option (issue 10, item 15): `spec.isolation: gvisor` runs the agent under
gVisor's runsc on Docker (a RuntimeClass on Kubernetes); the installation's default comes from
CLAWPEN_ISOLATION; asking for gvisor where the engine lacks the runtime is Failed with a reason that
says how to enable it. `make test` registers runsc first (deploy/host/ensure-gvisor.sh)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from controller.agent_token import FileAgentTokens
from controller.commands.resources import apply_resource
from controller.kube.objects import KubeOptions, build_statefulset
from controller.plan import WorkloadPlan
from controller.resources import API_VERSION, Agent, Phase, parse_resource
from controller.runtime.docker import container_name
from controller.settings import Settings
from tests.e2e.conftest import Plane
from tests.fakes.model_server import FakeModelServer, Script


def spec_of(model: FakeModelServer, isolation: str | None) -> Agent:
    spec = {"provider": "ollama", "baseURL": model.container_url(), "model": "fake-1"}
    if isolation:
        spec["isolation"] = isolation
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "boxed"}, "spec": spec})


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


@pytest.fixture
async def planes(tmp_path: Path, agent_image: str) -> AsyncIterator[Callable[..., Plane]]:
    """Control planes with settings overrides (isolation default, gVisor runtime name)."""
    made: list[Plane] = []

    def make(**overrides: Any) -> Plane:
        base = Settings.from_env({"CLAWPEN_HOME": str(tmp_path / f"home{len(made)}")})
        made.append(Plane(replace(base, instance=f"t{uuid.uuid4().hex[:8]}", image=agent_image, **overrides)))
        return made[-1]

    yield make
    for plane in made:
        await plane.cleanup()


def runsc_registered(client: docker.DockerClient) -> bool:
    return "runsc" in (client.info().get("Runtimes") or {})


@pytest.mark.docker
@pytest.mark.parametrize("how", ["spec", "installation default"])
async def test_agent_runs_under_gvisor(
    planes: Callable[..., Plane], model: FakeModelServer, docker_client: docker.DockerClient, how: str
) -> None:
    if not runsc_registered(docker_client):
        pytest.fail("the Docker engine has no runsc runtime: run deploy/host/ensure-gvisor.sh (make test does)")
    plane = planes(isolation="gvisor") if how == "installation default" else planes()
    await apply_resource(plane.store, spec_of(model, "gvisor" if how == "spec" else None))
    await plane.start_controller()
    agent = await plane.wait_running("boxed", timeout=120)
    container = docker_client.containers.get(container_name(plane.settings.instance, "default/boxed"))
    assert container.attrs["HostConfig"]["Runtime"] == "runsc"
    token = await FileAgentTokens(plane.settings.home).get("default/boxed")
    model.push(Script(reply="from inside gVisor"))
    assert agent.status is not None and agent.status.endpoint
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        answer = await http.post(
            f"{agent.status.endpoint}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "from inside gVisor"
        # The token requirement holds under gVisor too.
        assert (await http.post(f"{agent.status.endpoint}/v1/chat/completions", json=body)).status_code == 401


@pytest.mark.docker
async def test_gvisor_missing_is_failed_with_how_to_enable(
    planes: Callable[..., Plane], model: FakeModelServer, docker_client: docker.DockerClient
) -> None:
    plane = planes(gvisor_runtime="clawpen-no-such-runtime")
    await apply_resource(plane.store, spec_of(model, "gvisor"))
    await plane.start_controller()
    agent = await plane.wait_for(
        "boxed", lambda a: bool(a.status and a.status.phase == Phase.FAILED), timeout=60, what="Failed"
    )
    assert agent.status is not None
    ready = agent.status.condition("Ready")
    assert ready is not None and ready.reason == "GVisorUnavailable"
    assert "deploy/host/ensure-gvisor.sh" in ready.message and "clawpen-no-such-runtime" in ready.message
    assert not docker_client.containers.list(
        all=True, filters={"name": container_name(plane.settings.instance, "default/boxed")}
    )


def test_kubernetes_uses_the_configured_runtime_class() -> None:
    plan = WorkloadPlan(
        namespace="default",
        name="boxed",
        instance="i",
        image="img",
        env={},
        memory_mb=256,
        cpu=0.5,
        restart_policy="always",
        mounts=(),
        isolation="gvisor",
    )
    sts = build_statefulset(plan, None, KubeOptions(gvisor_runtime_class="gvisor-runsc"))
    assert sts["spec"]["template"]["spec"]["runtimeClassName"] == "gvisor-runsc"
    default = build_statefulset(replace(plan, isolation="default"), None, KubeOptions())
    assert "runtimeClassName" not in default["spec"]["template"]["spec"]


def test_rest_takes_isolation(tmp_path: Path) -> None:
    from tests.api.conftest import login, start_gateway

    server = start_gateway(tmp_path / "home")
    try:
        headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            created = http.post("/api/agents", json={"name": "boxed", "config": {"isolation": "gvisor"}})
            assert created.status_code == 201, created.text
            assert created.json()["config"]["isolation"] == "gvisor"
            wrong = http.post("/api/agents", json={"name": "bad", "config": {"isolation": "kata"}})
            assert wrong.status_code == 422 and "config.isolation" in wrong.text
    finally:
        server.stop()
