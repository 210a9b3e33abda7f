"""The security regression net: each module walks one attack the way an API user would.

Fixtures give a real gateway (uvicorn on 127.0.0.1, files under a temporary CLAWPEN_HOME) wired to
the real Docker engine with a unique instance id, so nothing here touches another run's objects.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import docker
import httpx
import pytest

from controller.plan import LABEL_INSTANCE
from controller.runtime.docker import DockerRuntime, network_name
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread
from tests.conftest import unique_instance


def cleanup_instance(client: docker.DockerClient, instance: str) -> None:
    """Remove exactly what one instance created (containers, volumes, its network)."""
    label = f"{LABEL_INSTANCE}={instance}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"label": label}):
        volume.remove(force=True)
    for network in client.networks.list(names=[network_name(instance)]):
        if network.name == network_name(instance):
            network.remove()


class DockerGateway:
    """A gateway on the real engine, plus an authenticated client and the runtime it uses."""

    def __init__(self, server: ServerThread, runtime: DockerRuntime, tokens: dict[str, Any]):
        self.server = server
        self.runtime = runtime
        self.tokens = tokens
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=30
        )

    @property
    def store(self) -> Any:
        return self.server.app.state.deps.store


@pytest.fixture(scope="module")
def docker_gateway(
    tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient, agent_image: str
) -> Iterator[DockerGateway]:
    instance = unique_instance("tsec")
    runtime = DockerRuntime(instance, secrets_root=tmp_path_factory.mktemp("secrets"))
    server = start_gateway(tmp_path_factory.mktemp("home"), runtime=runtime, instance=instance, image=agent_image)
    gw = DockerGateway(server, runtime, login(server.url))
    yield gw
    gw.http.close()
    server.stop()
    cleanup_instance(docker_client, instance)
    shutil.rmtree(runtime.secrets_root, ignore_errors=True)
