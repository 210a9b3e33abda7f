"""Shared fixtures for tests that need the real Docker engine and the real agent image.

The engine is shared with other test runs, so nothing here touches objects it did not create:
every test module makes its own instance id (`unique_instance()`), and all names derive from it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from controller.settings import Settings


def unique_instance(prefix: str = "t") -> str:
    """An installation id no other run uses: containers, volumes and networks are named after it."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as err:
        reason = f"Docker engine not reachable ({str(err).splitlines()[0]}); run `make docker`"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI promises an engine: its absence is a failure, not a skip
        pytest.skip(reason)
    yield client
    client.close()


@pytest.fixture(scope="session")
def agent_image(docker_client: docker.DockerClient) -> str:
    """The agent image tag, built (or found up to date) once per session."""
    from controller.image import build_agent_image

    tag = Settings.from_env().image
    build_agent_image(tag, client=docker_client, progress=lambda line: None)
    return tag
