"""Hole 12 (volumes): deleting an agent can take its volumes along, even while the controller races it,
and volumes of agents deleted without them can be found and pruned later.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import docker
import docker.errors
import pytest

from controller.plan import WorkloadPlan
from controller.runtime.docker import container_name, volume_names
from tests.security.conftest import DockerGateway

pytestmark = pytest.mark.docker


def make_agent(gw: DockerGateway, name: str, image: str) -> None:
    assert gw.http.post("/api/agents", json={"name": name}).status_code == 201
    plan = WorkloadPlan(
        namespace="default",
        name=name,
        instance=gw.runtime.instance,
        image=image,
        env={"CLAWPEN_AGENT_NAME": name},
        memory_mb=64,
        cpu=0.25,
        restart_policy="no",
        mounts=(),
    )
    gw.server.call(gw.runtime.apply(plan), timeout=60)


def volumes_exist(client: docker.DockerClient, instance: str, name: str) -> list[str]:
    found = []
    for volume in volume_names(instance, f"default/{name}").values():
        try:
            client.volumes.get(volume)
            found.append(volume)
        except docker.errors.NotFound:
            pass
    return found


def test_api_delete_with_volumes_wins_a_race_with_a_recreated_container(
    docker_gateway: DockerGateway, docker_client: docker.DockerClient, agent_image: str
) -> None:
    gw = docker_gateway
    make_agent(gw, "racer", agent_image)
    instance = gw.runtime.instance
    assert len(volumes_exist(docker_client, instance, "racer")) == 2
    data = volume_names(instance, "default/racer")["/data"]
    # What a controller mid-replace leaves for a moment: another container still holding the volume.
    holder = docker_client.containers.create(agent_image, name=f"{instance}-holder", volumes={data: {"bind": "/data"}})

    def release() -> None:
        time.sleep(1.5)
        holder.remove(force=True)

    racer = threading.Thread(target=release)
    racer.start()
    try:
        answer = gw.http.delete("/api/agents/racer", params={"volumes": "true"})
    finally:
        racer.join()
    assert answer.status_code == 204, answer.text
    assert volumes_exist(docker_client, instance, "racer") == []
    assert gw.http.get("/api/agents/racer").status_code == 404


def test_bad_volumes_flag_is_400_and_default_keeps_volumes(
    docker_gateway: DockerGateway, docker_client: docker.DockerClient, agent_image: str
) -> None:
    gw = docker_gateway
    make_agent(gw, "keeper", agent_image)
    assert gw.http.delete("/api/agents/keeper", params={"volumes": "maybe"}).status_code in (400, 422)
    assert gw.http.delete("/api/agents/keeper").status_code == 204
    docker_client.containers.get(container_name(gw.runtime.instance, "default/keeper")).remove(force=True)
    assert len(volumes_exist(docker_client, gw.runtime.instance, "keeper")) == 2


def test_volumes_list_and_prune_remove_only_deleted_agents_volumes(
    docker_gateway: DockerGateway, docker_client: docker.DockerClient, agent_image: str
) -> None:
    gw = docker_gateway
    if not volumes_exist(docker_client, gw.runtime.instance, "keeper"):
        pytest.skip("needs the agent deleted without its volumes above")
    make_agent(gw, "alive", agent_image)
    settings = gw.server.app.state.deps.settings
    env = {**os.environ, "CLAWPEN_HOME": str(settings.home), "CLAWPEN_INSTANCE": settings.instance}

    def clawpen(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "controller.cli", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listing = clawpen("volumes", "list")
    keeper = [line for line in listing.splitlines() if "_keeper_" in line]
    alive = [line for line in listing.splitlines() if "_alive_" in line]
    assert len(keeper) == 2 and all("orphaned" in line for line in keeper), listing
    assert len(alive) == 2 and all("in use" in line for line in alive), listing
    assert "would remove" in clawpen("volumes", "prune", "--dry-run")
    assert len(volumes_exist(docker_client, gw.runtime.instance, "keeper")) == 2
    out = clawpen("volumes", "prune")
    assert "2 volume(s) of deleted agents removed" in out, out
    assert volumes_exist(docker_client, gw.runtime.instance, "keeper") == []
    assert len(volumes_exist(docker_client, gw.runtime.instance, "alive")) == 2
