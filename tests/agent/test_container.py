"""The agent image end to end: a real container (read-only root, uid 10001, /data volume) talking to
the fake model server on the host through host.docker.internal. The image comes from the shared
`agent_image` fixture (tests/conftest.py), which builds it when the sources changed.

Only Docker objects this module creates are touched: everything carries a per-run label and is
removed by the fixtures' finalizers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.model_server import FakeModelServer, Script, echo_count

pytestmark = pytest.mark.docker

RUN_LABEL = "clawpen.test/agentprog-run"


@pytest.fixture
def run_id(docker_client: Any) -> Iterator[str]:
    run = uuid.uuid4().hex[:10]
    yield run
    for c in docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run}"}):
        c.remove(force=True)
    for v in docker_client.volumes.list(filters={"label": f"{RUN_LABEL}={run}"}):
        v.remove(force=True)


TOKEN = "container-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def token_dir(tmp_path: Any) -> str:
    """A directory holding the agent's token file, as the controller bind-mounts at /run/secrets."""
    directory = tmp_path / "secrets"
    directory.mkdir(exist_ok=True)
    (directory / "clawpen-agent-token").write_text(TOKEN)
    directory.chmod(0o755)
    (directory / "clawpen-agent-token").chmod(0o444)
    return str(directory)


def start_agent(
    client: Any, image: str, run: str, n: int, env: dict[str, str], volume: str, secrets: str | None = None
) -> Any:
    """As the controller runs agents: non-root, read-only root, /tmp tmpfs, /data a named volume."""
    volumes: dict[str, Any] = {volume: {"bind": "/data", "mode": "rw"}}
    if secrets:
        volumes[secrets] = {"bind": "/run/secrets", "mode": "ro"}
    return client.containers.run(
        image,
        detach=True,
        name=f"agentprog-e2e-{run}-{n}",
        labels={RUN_LABEL: run},
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": "size=16m"},
        environment=env,
        volumes=volumes,
        extra_hosts={"host.docker.internal": "host-gateway"},
        ports={"8080/tcp": ("127.0.0.1", None)},
    )


def wait_ready(container: Any, since: float, timeout: float = 30.0) -> tuple[str, float]:
    while True:
        container.reload()
        ports = (container.attrs["NetworkSettings"]["Ports"] or {}).get("8080/tcp")
        if ports:
            url = f"http://127.0.0.1:{ports[0]['HostPort']}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url, time.monotonic() - since
            except httpx.TransportError:
                pass
        if container.status == "exited" or time.monotonic() - since > timeout:
            raise AssertionError(f"agent not ready; logs:\n{container.logs().decode()[-2000:]}")
        time.sleep(0.02)


def test_chat_in_container_survives_replacement(
    docker_client: Any, agent_image: str, run_id: str, fake_model: FakeModelServer, tmp_path: Any
) -> None:
    fake_model.default = Script(reply=echo_count)
    volume = docker_client.volumes.create(f"agentprog-e2e-{run_id}-data", labels={RUN_LABEL: run_id}).name
    env = {
        "CLAWPEN_AGENT_NAME": "boxed",
        "CLAWPEN_PROVIDER": "fake",
        "CLAWPEN_PROVIDER_NAME": "FakeAI",
        "CLAWPEN_API_STYLE": "openai",
        "CLAWPEN_BASE_URL": fake_model.container_url(),
        "CLAWPEN_MODEL": "fake-1",
        "CLAWPEN_SYSTEM_PROMPT": "You are {{name}}.",
        "CLAWPEN_DATA_DIR": "/data",
    }
    t0 = time.monotonic()
    secrets = token_dir(tmp_path)
    first = start_agent(docker_client, agent_image, run_id, 1, env, volume, secrets)
    url, ready_s = wait_ready(first, t0)
    print(f"container start -> /healthz ready: {ready_s:.2f}s")
    body = {"messages": [{"role": "user", "content": "remember 7"}], "session": "main"}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=30).json()
    assert reply["choices"][0]["message"]["content"] == "messages=2 system=1 last=remember 7"
    assert fake_model.requests[-1].messages[0] == {"role": "system", "content": "You are boxed."}

    first.remove(force=True)  # what a memory change does: a new container on the same volume
    second = start_agent(docker_client, agent_image, run_id, 2, env, volume, secrets)
    url, _ = wait_ready(second, time.monotonic())
    body = {"messages": [{"role": "user", "content": "what number?"}], "session": "main", "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=30) as resp:
        lines = [line for line in resp.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert any("messages=4" in line for line in lines)  # system + remembered turn + the new question
    assert fake_model.requests[-1].messages[1] == {"role": "user", "content": "remember 7"}


def test_missing_key_is_reported_by_healthz(docker_client: Any, agent_image: str, run_id: str) -> None:
    env = {
        "CLAWPEN_API_STYLE": "openai",
        "CLAWPEN_BASE_URL": "http://host.docker.internal:9/v1",
        "CLAWPEN_MODEL": "m",
        "CLAWPEN_API_KEY_NAME": "OPENAI_API_KEY",
    }
    volume = docker_client.volumes.create(f"agentprog-e2e-{run_id}-nokey", labels={RUN_LABEL: run_id}).name
    container = start_agent(docker_client, agent_image, run_id, 3, env, volume)
    deadline = time.monotonic() + 30
    while True:
        container.reload()
        ports = (container.attrs["NetworkSettings"]["Ports"] or {}).get("8080/tcp")
        if ports:
            try:
                resp = httpx.get(f"http://127.0.0.1:{ports[0]['HostPort']}/healthz", timeout=1)
                break
            except httpx.TransportError:
                pass
        assert time.monotonic() < deadline and container.status != "exited", container.logs().decode()
        time.sleep(0.05)
    assert resp.status_code == 503
    assert "OPENAI_API_KEY not found" in resp.json()["reason"]
