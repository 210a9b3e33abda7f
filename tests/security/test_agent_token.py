"""Attack: call an agent's published chat port directly, without going through the gateway.

Before: any local process could POST 127.0.0.1:<port>/v1/chat/completions, continue any session and
spend the agent's API key. Now each agent has a random bearer token, delivered as the file
/run/secrets/clawpen-agent-token (never env, never in `docker inspect`), required on everything but
/healthz; the gateway and `clawpen chat` attach it. The host port stays the same across
stop/start and replacement, so users' OpenAI clients keep pointing at the right place.
"""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from websockets.sync.client import connect

from controller.agent_token import FileAgentTokens
from controller.cli import main as cli_main
from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Agent, Phase, parse_resource
from controller.runtime.docker import container_name
from controller.settings import Settings
from tests.api.conftest import login, start_gateway
from tests.e2e.conftest import Plane
from tests.fakes.model_server import FakeModelServer, Script

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


@pytest.fixture
async def plane(tmp_path: Path, agent_image: str) -> AsyncIterator[Plane]:
    base = Settings.from_env({"CLAWPEN_HOME": str(tmp_path / "home")})
    p = Plane(replace(base, instance=f"t{uuid.uuid4().hex[:8]}", image=agent_image, resync_seconds=2.0))
    try:
        yield p
    finally:
        await p.cleanup()


def manifest(model: FakeModelServer, memory_mb: int = 256, state: str = "Running") -> Agent:
    spec = {
        "provider": "ollama",
        "baseURL": model.container_url(),
        "model": "fake-1",
        "resources": {"memoryMB": memory_mb},
        "state": state,
    }
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "locked"}, "spec": spec})


def ws_chat(ws_url: str, token: str, content: str) -> dict[str, Any]:
    with connect(f"{ws_url}/api/agents/locked/chat?token={token}") as ws:
        ws.send(json.dumps({"content": content, "session": "main"}))
        while True:
            frame = json.loads(ws.recv(timeout=60))
            if frame.get("done") or frame.get("error"):
                return dict(frame)


async def test_agent_port_needs_the_token_and_the_gateway_has_it(
    plane: Plane, model: FakeModelServer, docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    model.reset()
    await apply_resource(plane.store, manifest(model))
    await plane.start_controller()
    agent = await plane.wait_running("locked")
    endpoint = agent.status.endpoint if agent.status else None
    assert endpoint and endpoint.startswith("http://127.0.0.1:")
    body = {"messages": [{"role": "user", "content": "spend their key"}], "session": "main"}

    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        assert (await http.get(f"{endpoint}/healthz")).status_code == 200  # probes need no token
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic x"}):
            answer = await http.post(f"{endpoint}/v1/chat/completions", json=body, headers=headers)
            assert answer.status_code == 401, answer.text
            assert (await http.get(f"{endpoint}/v1/models", headers=headers)).status_code == 401
    assert model.requests == []  # nothing reached the model

    # The token: a 0600 file under the home, the same bytes as the agent's secret file, nowhere else.
    token_file = plane.settings.home / "agent-tokens" / "default_locked"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 40
    container = docker_client.containers.get(container_name(plane.settings.instance, "default/locked"))
    assert token not in json.dumps(container.attrs)  # neither env, labels, cmd nor mounts show it
    assert not any("TOKEN" in e.split("=")[0] for e in container.attrs["Config"]["Env"])
    mounts = {m["Destination"] for m in container.attrs["Mounts"]}
    assert "/run/secrets" in mounts

    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        answer = await http.post(
            f"{endpoint}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200

    gateway = start_gateway(plane.settings.home)
    try:
        access = login(gateway.url)["access_token"]
        model.push(Script(reply="via the gateway"))
        done = await asyncio.to_thread(ws_chat, gateway.ws_url, access, "hello")
        assert done.get("content") == "via the gateway", done
    finally:
        gateway.stop()

    monkeypatch.setenv("CLAWPEN_HOME", str(plane.settings.home))
    model.push(Script(reply="via the cli"))
    capsys.readouterr()
    assert await asyncio.to_thread(cli_main, ["chat", "locked", "-m", "hi"]) == 0
    assert capsys.readouterr().out == "via the cli\n"


async def test_host_port_is_stable_across_stop_start_and_replace(plane: Plane, model: FakeModelServer) -> None:
    await apply_resource(plane.store, manifest(model))
    await plane.start_controller()
    first = await plane.wait_running("locked")
    assert first.status is not None
    endpoint = first.status.endpoint

    await apply_resource(plane.store, manifest(model, state="Stopped"))
    await plane.wait_for("locked", lambda a: bool(a.status and a.status.phase == Phase.STOPPED), what="Stopped")
    await apply_resource(plane.store, manifest(model))
    again = await plane.wait_running("locked")
    assert again.status is not None and again.status.endpoint == endpoint

    await apply_resource(plane.store, manifest(model, memory_mb=320))  # a new container (plan hash)
    await plane.wait_for(
        "locked",
        lambda a: bool(a.status and a.status.container_id and a.status.container_id != first.status.container_id),
        what="a replacement container",
    )
    replaced = await plane.wait_running("locked")
    assert replaced.status is not None and replaced.status.endpoint == endpoint
    # The token survived the replacement too: the agent still accepts the stored one.
    token = await FileAgentTokens(plane.settings.home).get("default/locked")
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        answer = await http.get(f"{endpoint}/v1/models", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200
