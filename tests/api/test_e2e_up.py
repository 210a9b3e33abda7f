"""End to end: `clawpen up` as a user runs it (one process: controller + gateway), driven over REST
and the chat WebSocket, against the real Docker engine and the real agent image: create → running →
chat (streamed, through the agent to a fake model server: model APIs are the one thing we fake) →
logs → PUT memory (container replaced with the new limit; the chat session continues) → stop →
start → delete. Only Docker objects of this run's unique instance are touched."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from controller.plan import LABEL_INSTANCE
from tests.fakes.model_server import FakeModelServer, Script, echo_count
from tests.support.clawpen_up import clawpen_up

pytestmark = pytest.mark.docker
PASSWORD = "end to end password"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def up(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, agent_image: str
) -> Iterator[tuple[str, str]]:
    with clawpen_up(docker_client, agent_image, tmp_path_factory.mktemp("up-home"), password=PASSWORD) as run:
        yield run.url, run.instance
    assert run.proc.returncode == 0, run.tail()


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    server.default = Script(reply=echo_count, chunks=3)
    yield server
    server.stop()


def _chat(url: str, token: str, name: str, content: str) -> list[dict[str, Any]]:
    ws_url = url.replace("http://", "ws://") + f"/api/agents/{name}/chat?token={token}"
    frames = []
    with connect(ws_url) as ws:
        ws.send(json.dumps({"content": content, "session": "e2e"}))
        while not (frames and (frames[-1].get("done") or frames[-1].get("error"))):
            frames.append(json.loads(ws.recv(timeout=60)))
    return frames


def _wait(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _containers(docker_client: Any, instance: str) -> list[Any]:
    import docker.errors

    for _ in range(10):
        try:
            return docker_client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"})
        except docker.errors.NotFound:  # removed between docker-py's list and its inspect: list again
            continue
    raise AssertionError("the container list kept changing under docker-py")


def test_rest_lifecycle_with_clawpen_up(up: tuple[str, str], docker_client: Any, fake_model: FakeModelServer) -> None:
    url, instance = up
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    token = httpx.post(f"{url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    config = {"llm_provider": "ollama", "llm_model": "fake-1", "base_url": fake_model.container_url(), "memory_mb": 256}
    created = api.post("/api/agents", json={"name": "e2e", "config": config})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"

    def status() -> dict[str, Any]:
        return api.get("/api/agents/e2e").json()

    running = _wait(lambda: (s := status())["status"] == "running" and s, "status running")
    assert running["endpoint"] and any(c["type"] == "Ready" for c in running["conditions"])
    (container,) = _containers(docker_client, instance)
    assert container.status == "running"
    assert container.attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024

    logs = api.get("/api/agents/e2e/logs", params={"tail": 50})
    assert logs.status_code == 200 and isinstance(logs.json(), list)
    for line in logs.json():
        assert set(line) >= {"timestamp", "level", "message"}
    stream_url = url.replace("http://", "ws://") + f"/api/agents/e2e/logs/stream?tail=5&token={token}"
    with connect(stream_url) as ws:
        frame = json.loads(ws.recv(timeout=30))  # the health probes alone make the agent log lines
        assert set(frame) == {"timestamp", "level", "message", "stream"}
    metrics = api.get("/api/agents/e2e/metrics").json()
    assert 0 < metrics["memory_mb"] <= 256 and metrics["memory_limit_mb"] == 256
    health = api.get("/api/agents/e2e/health").json()
    assert health["running"] is True and health["healthy"] is True

    # PUT changes the memory limit; the controller replaces the container with the new one.
    assert api.put("/api/agents/e2e", json={"config": {**config, "memory_mb": 384}}).status_code == 200

    def replaced() -> bool:
        found = _containers(docker_client, instance)
        return (
            len(found) == 1
            and found[0].attrs["HostConfig"]["Memory"] == 384 * 1024 * 1024
            and found[0].status == "running"
        )

    _wait(replaced, "a running container with the 384 MB limit")
    _wait(lambda: status()["status"] == "running", "status running after the update")

    assert api.post("/api/agents/e2e/stop").status_code == 202
    _wait(lambda: status()["status"] == "stopped", "status stopped")
    assert all(c.status != "running" for c in _containers(docker_client, instance))

    assert api.post("/api/agents/e2e/start").status_code == 202
    _wait(lambda: status()["status"] == "running", "status running again")

    runtime = api.get("/api/runtime/status").json()
    assert runtime["available"] is True and runtime["agents_running"] == 1 and runtime["store"] == "files"
    assert api.get("/api/metrics").json()["agents"][0]["id"] == "e2e"

    assert api.delete("/api/agents/e2e").status_code == 204
    _wait(lambda: not _containers(docker_client, instance), "the container to be removed")
    assert api.get("/api/agents/e2e").status_code == 404
    assert "clawpen_reconcile_total" in httpx.get(f"{url}/metrics").text


def test_chat_through_the_gateway_survives_container_replacement(
    up: tuple[str, str], docker_client: Any, fake_model: FakeModelServer
) -> None:
    url, instance = up
    token = httpx.post(f"{url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    config = {"llm_provider": "ollama", "llm_model": "fake-1", "base_url": fake_model.container_url(), "memory_mb": 256}
    assert api.post("/api/agents", json={"name": "talk", "config": config}).status_code == 201
    try:
        _wait(lambda: api.get("/api/agents/talk").json()["status"] == "running", "status running")
        frames = _chat(url, token, "talk", "remember 7")
        assert frames[-1].get("done") is True, frames
        first = re.fullmatch(r"messages=(\d+) system=\d last=remember 7", frames[-1]["content"])
        assert first, frames[-1]
        seen = int(first.group(1))
        deltas = [f["content"] for f in frames if f.get("delta")]
        assert len(deltas) >= 2 and "".join(deltas) == frames[-1]["content"]

        (before,) = _containers(docker_client, instance)
        assert api.put("/api/agents/talk", json={"config": {**config, "memory_mb": 320}}).status_code == 200

        def replaced() -> bool:
            body = api.get("/api/agents/talk").json()
            return body["status"] == "running" and body["observed_generation"] == body["generation"]

        _wait(replaced, "the replaced agent running")
        (after,) = _containers(docker_client, instance)
        assert after.id != before.id
        # A new container on the same /data volume: the session's history is still there.
        again = _chat(url, token, "talk", "what number?")[-1]
        second = re.fullmatch(r"messages=(\d+) system=\d last=what number\?", again.get("content", ""))
        assert second and int(second.group(1)) == seen + 2, again  # + the remembered turn (question, answer)
    finally:
        api.delete("/api/agents/talk")
        _wait(lambda: not _containers(docker_client, instance), "the container to be removed")
