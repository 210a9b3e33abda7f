"""End to end: team chat routes to the right agent container and streams that container's reply.

`clawpen up` as a user runs it (controller + gateway in one process) against the real Docker engine,
with a team file in its teams directory and two agents created over REST. The only fake is the model
provider: a fake model server on this host answers the team router (in the gateway process, over
127.0.0.1) and the agent containers (over host.docker.internal). Only this run's containers (unique
instance label) are touched.
"""

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

from tests.controller.teams.scripted_model import ScriptedModel
from tests.fakes.model_server import FakeModelServer, Script, last_user_message
from tests.support.clawpen_up import clawpen_up

pytestmark = pytest.mark.docker
PASSWORD = "team chat end to end"
ROOT = Path(__file__).resolve().parents[2]
ROUTER_PROMPT = "You route messages for the team"


def model_reply(body: dict[str, Any]) -> str:
    messages = body.get("messages", [])
    system = next((m["content"] for m in messages if m.get("role") == "system"), "") or body.get("system", "")
    if ROUTER_PROMPT in system:
        intent, confidence = ScriptedModel().choose(system, last_user_message(body))
        return json.dumps({"intent": intent, "confidence": confidence, "reasoning": "fake router"})
    match = re.search(r"You are ([a-z0-9-]+)", system)
    return f"{match.group(1) if match else 'nobody'} heard: {last_user_message(body)}"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()  # 0.0.0.0: the agent containers reach it through the host gateway
    server.default = Script(reply=model_reply)
    yield server
    server.stop()


TEAM = """
[team]
id = "e2e-team"
name = "E2E Team"
description = "Receipts and bills"

[router]
mode = "hybrid"
provider = "ollama"
base_url = "{url}"

[agents]
receipts = {{ agent = "e2e-finn", description = "Money already spent: receipts and expenses" }}
payables = {{ agent = "e2e-pax", description = "Money we owe: bills and vendor payments" }}

[routing.receipts]
keywords = ["receipt", "expense"]
examples = ["Here's a receipt from the taxi"]

[routing.payables]
keywords = ["bill", "vendor"]
examples = ["Pay the electricity bill"]

[responses]
routing_ack = "Passing you to {{agent_name}}"
"""


@pytest.fixture(scope="module")
def up(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, agent_image: str, fake: FakeModelServer
) -> Iterator[str]:
    teams = {"e2e-team.toml": TEAM.format(url=fake.url)}
    with clawpen_up(docker_client, agent_image, tmp_path_factory.mktemp("home"), password=PASSWORD, teams=teams) as run:
        yield run.url


def _wait(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _exchange(ws: Any, content: str) -> list[dict[str, Any]]:
    ws.send(json.dumps({"content": content}))
    frames = []
    while True:
        frame = json.loads(ws.recv(timeout=60))
        frames.append(frame)
        if frame.get("done") or frame.get("error") or frame.get("type") == "clarification":
            return frames


def test_team_chat_reaches_the_right_container(up: str, fake: FakeModelServer) -> None:
    token = httpx.post(f"{up}/auth/login", json={"password": PASSWORD}).json()["access_token"]
    api = httpx.Client(base_url=up, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert api.get("/api/teams/e2e-team").json()["status"]["missing_agents"] == ["e2e-finn", "e2e-pax"]
    for name in ("e2e-finn", "e2e-pax"):
        config = {
            "llm_provider": "ollama",
            "llm_model": "fake-model",
            "base_url": fake.container_url(),
            "system_prompt": f"You are {name}.",
            "memory_mb": 256,
        }
        created = api.post("/api/agents", json={"name": name, "config": config})
        assert created.status_code == 201, created.text
    for name in ("e2e-finn", "e2e-pax"):
        _wait(lambda n=name: api.get(f"/api/agents/{n}").json()["status"] == "running", f"{name} running")
    assert api.get("/api/teams/e2e-team").json()["status"]["phase"] == "Ready"

    with connect(f"{up.replace('http', 'ws')}/api/teams/e2e-team/chat?token={token}") as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "welcome"
        frames = _exchange(ws, "Here's a receipt from the taxi ride")
        assert frames[0]["routing_to"] == "e2e-finn" and frames[0]["content"] == "Passing you to e2e-finn"
        assert frames[-1].get("done") and frames[-1]["from_agent"] == "e2e-finn", frames
        assert frames[-1]["content"] == "e2e-finn heard: Here's a receipt from the taxi ride"
        frames = _exchange(ws, "Please pay the water bill to our vendor")
        assert frames[0]["routing_to"] == "e2e-pax"
        assert frames[-1]["content"] == "e2e-pax heard: Please pay the water bill to our vendor"

    assert api.post("/api/agents/e2e-pax/stop").status_code == 202
    _wait(
        lambda: api.get("/api/teams/e2e-team").json()["status"]["not_running_agents"] == ["e2e-pax"],
        "the team to report e2e-pax not running",
    )
