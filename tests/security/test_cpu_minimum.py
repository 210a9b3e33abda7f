"""Attack: a tiny cpu removes the CPU limit (issue 10, hole 9).

`cpu_cores: 1e-300` became NanoCpus 0 (no quota at all); `0.001` made a container Docker cannot start.
The minimum is 0.01 CPU, validated in the REST API and in manifests alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from controller.resources import API_VERSION, ManifestError, parse_resource
from tests.api.conftest import login, start_gateway


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = start_gateway(tmp_path_factory.mktemp("home"))
    headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as c:
        yield c
    server.stop()


@pytest.mark.parametrize("cpu", [1e-300, 0.001, 0.0099])
def test_rest_refuses_cpu_below_the_minimum(client: httpx.Client, cpu: float) -> None:
    answer = client.post("/api/agents", json={"name": "tiny", "config": {"cpu_cores": cpu}})
    assert answer.status_code == 422, answer.text
    assert any("cpu" in e["field"] and "0.01" in e["message"] for e in answer.json()["detail"])


def test_rest_accepts_the_minimum(client: httpx.Client) -> None:
    assert client.post("/api/agents", json={"name": "small", "config": {"cpu_cores": 0.01}}).status_code == 201


@pytest.mark.parametrize("cpu", [1e-300, 0.001])
def test_manifest_refuses_cpu_below_the_minimum(cpu: float) -> None:
    doc = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "t"}, "spec": {"resources": {"cpu": cpu}}}
    with pytest.raises((ManifestError, ValueError), match="0.01"):
        parse_resource(doc)
