"""End to end: an OpenClaw agent run by `clawpen up`, chatted with through our gateway.

One real OpenClaw gateway container is shared by the whole module (it takes tens of seconds to
boot), created over REST with `config.program: openclaw` against the fake OpenAI-compatible model
server. OpenClaw sends its own large system prompt and tools, streams, and wraps the user's text,
so the fake answers from the latest user message it finds and reports how many user turns it saw.
Only this run's containers (unique instance label) are touched.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from controller.plan import LABEL_INSTANCE
from tests.fakes.model_server import FakeModelServer, Script
from tests.support.clawpen_up import clawpen_up

# OpenClaw boots in tens of seconds (minutes on a loaded machine): the shared agent's start counts
# against the first test that uses it.
pytestmark = [pytest.mark.docker, pytest.mark.openclaw, pytest.mark.timeout(900)]
PASSWORD = "openclaw end to end"
ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-e2e-" + uuid.uuid4().hex
NAME = "oc-e2e"
ROUTER_PROMPT = "You route messages for the team"


def said(body: dict[str, Any]) -> list[str]:
    """The test's marker words (word-xxx) in the user messages, first mention order: OpenClaw wraps the
    user's text (and may add user-role context of its own), so the fake looks for what the test said."""
    found: list[str] = []
    for message in body.get("messages", []):
        if message.get("role") == "user":
            for word in re.findall(r"word-[a-z0-9]+", json.dumps(message.get("content"))):
                if word not in found:
                    found.append(word)
    return found


def reply(body: dict[str, Any]) -> str:
    messages = body.get("messages", [])
    system = next((str(m.get("content")) for m in messages if m.get("role") == "system"), "")
    if ROUTER_PROMPT in system:  # the team router (in the gateway) asks which member should answer
        return json.dumps({"intent": "claw", "confidence": 0.95, "reasoning": "fake router"})
    words = said(body)
    return f"openclaw heard {words[-1] if words else 'nothing'} after {len(words)} user turns"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    server.default = Script(reply=reply)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def openclaw_image(docker_client: Any) -> str:
    from controller.programs.images import build_openclaw_image

    tag, _ = build_openclaw_image(client=docker_client, progress=lambda line: None)
    return tag


TEAM = """
[team]
id = "oc-team"
name = "OpenClaw Team"
description = "One OpenClaw member"

[router]
mode = "keyword"

[agents]
claw = {{ agent = "{name}", description = "Anything at all" }}

[routing.claw]
keywords = ["claw", "word"]
examples = ["Ask the claw"]

[responses]
routing_ack = "Passing you to {{agent_name}}"
"""


@pytest.fixture(scope="module")
def up(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
    agent_image: str,
    openclaw_image: str,
    fake: FakeModelServer,
) -> Iterator[dict[str, Any]]:
    teams = {"oc-team.toml": TEAM.format(name=NAME)}
    with clawpen_up(docker_client, agent_image, tmp_path_factory.mktemp("home"), password=PASSWORD, teams=teams) as run:
        token = httpx.post(f"{run.url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
        api = httpx.Client(base_url=run.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        yield {"url": run.url, "token": token, "api": api, "env": run.env, "instance": run.instance, "log": run.log}


def _wait(check: Callable[[], Any], what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _last_request(fake: FakeModelServer) -> str:
    """What the model got last (roles and the start of each message), for a failing assertion."""
    body = fake.requests[-1].body if fake.requests else {}
    return json.dumps([(m.get("role"), json.dumps(m.get("content"))[:300]) for m in body.get("messages", [])])[:4000]


def _chat(up: dict[str, Any], content: str, session: str = "main") -> list[dict[str, Any]]:
    with connect(f"{up['url'].replace('http', 'ws')}/api/agents/{NAME}/chat?token={up['token']}") as ws:
        ws.send(json.dumps({"content": content, "session": session}))
        frames = []
        while True:
            frame = json.loads(ws.recv(timeout=300))
            frames.append(frame)
            if frame.get("done") or frame.get("error"):
                return frames


@pytest.fixture(scope="module")
def ready(up: dict[str, Any], fake: FakeModelServer) -> dict[str, Any]:
    """The shared OpenClaw agent, created over REST and waited for; what its status said meanwhile."""
    api = up["api"]
    assert api.post("/api/secrets", json={"name": "OPENAI_API_KEY", "value": API_KEY}).status_code == 201
    config = {
        "program": "openclaw",
        "llm_provider": "openai",
        "llm_model": "fake-model",
        "base_url": fake.container_url(),
        # Two cores' worth of quota: the test process, gateway and other containers share this box,
        # and OpenClaw's startup has fixed 5 s internal deadlines that CPU throttling can miss.
        "cpu_cores": 2.0,
    }
    created = api.post("/api/agents", json={"name": NAME, "template": "openclaw-agent", "config": config})
    assert created.status_code == 201, created.text
    messages: list[str] = []

    def running() -> bool:
        agent = api.get(f"/api/agents/{NAME}").json()
        messages.append(agent.get("message") or "")
        return bool(agent["status"] == "running")

    _wait(running, "the OpenClaw agent to be Ready")
    return {"messages": messages, "agent": api.get(f"/api/agents/{NAME}").json()}


def test_create_reports_starting_then_ready(ready: dict[str, Any]) -> None:
    agent = ready["agent"]
    assert agent["config"]["program"] == "openclaw"
    ready_condition = next(c for c in agent["conditions"] if c["type"] == "Ready")
    assert ready_condition["status"] == "True"
    starting = [m for m in ready["messages"] if m.startswith("OpenClaw gateway starting (")]
    assert starting and re.search(r"\(\d+ s; waits for /readyz\)", starting[-1]), ready["messages"][-5:]


def test_ws_chat_streams_and_second_turn_carries_the_first(
    up: dict[str, Any], ready: Any, fake: FakeModelServer
) -> None:
    frames = _chat(up, "hello word-alpha")
    assert frames[-1].get("done"), frames
    deltas = [f for f in frames if f.get("delta")]
    assert deltas and "".join(f["content"] for f in deltas) == frames[-1]["content"]
    assert frames[-1]["content"].startswith("openclaw heard word-alpha"), (frames[-1], _last_request(fake))
    frames = _chat(up, "and now word-beta")
    assert frames[-1]["content"].startswith("openclaw heard word-beta"), frames[-1]
    last = [r for r in fake.requests if "word-beta" in said(r.body)][-1]
    assert said(last.body) == ["word-alpha", "word-beta"], "the first turn is not in the history the model got"


def test_clawpen_chat_cli(up: dict[str, Any], ready: Any) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "controller.cli", "chat", NAME, "--session", "cli", "-m", "cli says word-gamma"],
        cwd=ROOT,
        env=up["env"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    assert "openclaw heard word-gamma after 1 user turns" in out.stdout


def test_container_is_hardened_and_leaks_no_secret(up: dict[str, Any], ready: Any, docker_client: Any) -> None:
    label = {"label": f"{LABEL_INSTANCE}={up['instance']}"}
    container = next(c for c in docker_client.containers.list(filters=label) if NAME in c.name)
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == "10001:10001"
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] == 2048 * 1024 * 1024
    token = container.exec_run(["cat", "/run/secrets/clawpen-agent-token"], user="10001").output.decode().strip()
    assert len(token) > 20
    uid = container.exec_run(["sh", "-c", "id -u"]).output.decode().strip()
    assert uid == "10001"
    api = up["api"]
    surfaces = {
        "docker inspect": json.dumps(container.attrs),
        "docker logs": container.logs().decode("utf-8", "replace"),
        "API agent": api.get(f"/api/agents/{NAME}").text,
        "API list": api.get("/api/agents").text,
        "API secrets": api.get(f"/api/agents/{NAME}/secrets").text + api.get("/api/secrets").text,
        "clawpen up log": "".join(up["log"]),
    }
    for where, text in surfaces.items():
        assert token not in text, f"the gateway token appears in {where}"
        assert API_KEY not in text, f"the API key appears in {where}"


def test_team_routes_to_the_openclaw_agent(up: dict[str, Any], ready: Any) -> None:
    token = up["token"]
    with connect(f"{up['url'].replace('http', 'ws')}/api/teams/oc-team/chat?token={token}") as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "welcome"
        ws.send(json.dumps({"content": "claw, please take word-zeta"}))
        frames = []
        while True:
            frame = json.loads(ws.recv(timeout=300))
            frames.append(frame)
            if frame.get("done") or frame.get("error") or frame.get("type") == "clarification":
                break
    assert frames[0].get("routing_to") == NAME, frames
    assert frames[-1].get("done") and frames[-1]["from_agent"] == NAME, frames
    assert frames[-1]["content"].startswith("openclaw heard word-zeta"), frames[-1]


def test_stop_start_keeps_the_session(up: dict[str, Any], ready: Any, fake: FakeModelServer) -> None:
    api = up["api"]
    frames = _chat(up, "remember word-delta", session="keep")
    assert frames[-1].get("done"), frames
    assert api.post(f"/api/agents/{NAME}/stop").status_code == 202
    _wait(lambda: api.get(f"/api/agents/{NAME}").json()["status"] == "stopped", "stopped", 60)
    assert api.post(f"/api/agents/{NAME}/start").status_code == 202
    _wait(lambda: api.get(f"/api/agents/{NAME}").json()["status"] == "running", "running again", 600)
    frames = _chat(up, "recall word-epsilon", session="keep")
    assert frames[-1]["content"].startswith("openclaw heard word-epsilon after 2 user turns"), frames[-1]
