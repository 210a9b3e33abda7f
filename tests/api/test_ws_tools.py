"""Tool frames and approvals through the gateway, over real WebSockets: the real agent program (in
process, tools on, its workspace a temporary directory) behind the gateway's agent chat and team
chat relays, a scripted fake model asking for the tool calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from agent.app import create_app as create_agent_app
from agent.config import AgentConfig
from controller.resources import Agent, AgentStatus, Phase
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread
from tests.fakes.model_server import FakeModelServer, Script, calls
from tests.fakes.server_thread import ServerThread as AppThread

TEAM = """
[team]
id = "tooling"
name = "Tooling"
version = "1.0.0"

[router]
mode = "keyword"
provider = "ollama"
model = "fake"
fallback_intent = "work"

[agents]
work = { agent = "toolie", description = "does things in its workspace" }

[routing.work]
keywords = ["file"]
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    server = FakeModelServer(host="127.0.0.1").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
def agent_server(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeModelServer, workspace: Path
) -> Iterator[AppThread]:
    data = tmp_path_factory.mktemp("data")
    (data / "secrets").mkdir()
    (data / "secrets" / "clawpen-agent-token").write_text("token-of-toolie")  # what the controller mounts
    tools = {
        "builtin": ["read_file", "write_file", "list_files", "run_command"],
        "approval": {"run_command": "always"},
        "approvalTimeoutSeconds": 1.5,
    }
    config = AgentConfig.from_env(
        {
            "CLAWPEN_AGENT_NAME": "toolie",
            "CLAWPEN_PROVIDER": "ollama",
            "CLAWPEN_BASE_URL": fake.url,
            "CLAWPEN_MODEL": "fake-model",
            "CLAWPEN_DATA_DIR": str(data),
            "CLAWPEN_SECRETS_DIR": str(data / "secrets"),
            "CLAWPEN_WORKSPACE": str(workspace),
            "CLAWPEN_TOOLS": json.dumps(tools),
        }
    )
    server = AppThread(create_agent_app(config)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, agent_server: AppThread) -> Iterator[ServerThread]:
    teams = tmp_path_factory.mktemp("teams")
    (teams / "tooling.toml").write_text(TEAM)
    server = start_gateway(tmp_path_factory.mktemp("home"), teams_dir=teams)
    store = server.app.state.deps.store
    server.call(store.create(Agent.model_validate({"metadata": {"name": "toolie"}, "spec": {"model": "fake"}})))
    server.call(store.update_status(Agent, "toolie", AgentStatus(phase=Phase.RUNNING, endpoint=agent_server.url)))
    server.call(server.app.state.deps.tokens.put("default/toolie", "token-of-toolie"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(gateway: ServerThread) -> str:
    return str(login(gateway.url)["access_token"])


def _open(gateway: ServerThread, token: str, path: str = "agents/toolie") -> ClientConnection:
    return connect(f"{gateway.ws_url}/api/{path}/chat?token={token}")


def _turn(ws: ClientConnection, content: str, approve: bool | None = None) -> list[dict[str, Any]]:
    """Send a message; answer approval requests with `approve` (None: stay silent); frames to the end."""
    ws.send(json.dumps({"content": content}))
    frames = []
    while True:
        frame = json.loads(ws.recv(timeout=20))
        frames.append(frame)
        if frame.get("type") == "approval_request" and approve is not None:
            ws.send(json.dumps({"type": "approval", "id": frame["id"], "approve": approve}))
        if frame.get("done") or frame.get("error"):
            return frames


def _of(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("type") == kind]


def test_tool_frames_reach_the_client_and_text_frames_keep_their_shape(
    gateway: ServerThread, token: str, fake: FakeModelServer, workspace: Path
) -> None:
    fake.push(
        calls(("write_file", {"path": "plan.md", "content": "step one"})),
        calls(("read_file", {"path": "plan.md"})),
        Script(reply="Plan written."),
    )
    with _open(gateway, token) as ws:
        frames = _turn(ws, "write the plan")
    calls_, results = _of(frames, "tool_call"), _of(frames, "tool_result")
    assert [(c["name"], c["arguments"]) for c in calls_] == [
        ("write_file", {"path": "plan.md", "content": "step one"}),
        ("read_file", {"path": "plan.md"}),
    ]
    assert set(calls_[0]) == {"type", "id", "name", "arguments", "timestamp"}
    assert results[0] == {**results[0], "id": calls_[0]["id"], "name": "write_file", "is_error": False}
    assert results[1]["output"] == "step one"
    assert (workspace / "plan.md").read_text() == "step one"
    text = [f for f in frames if f.get("role") == "assistant"]
    assert text[-1]["done"] is True and text[-1]["content"] == "Plan written."
    assert all(f.get("delta") for f in text[:-1])


@pytest.mark.parametrize(
    ("approve", "expect"),
    [(True, "exit code: 0"), (False, "denied: the user refused"), (None, "denied: nobody approved run_command")],
    ids=["approve", "deny", "timeout"],
)
def test_approval_over_the_websocket(
    gateway: ServerThread, token: str, fake: FakeModelServer, workspace: Path, approve: bool | None, expect: str
) -> None:
    marker = workspace / f"approved-{approve}"
    fake.push(calls(("run_command", {"command": f"touch {marker.name}"})), Script(reply="ok"))
    with _open(gateway, token) as ws:
        frames = _turn(ws, "run it", approve)
    (request,) = _of(frames, "approval_request")
    assert request["name"] == "run_command" and request["arguments"] == {"command": f"touch {marker.name}"}
    (result,) = _of(frames, "tool_result")
    assert result["id"] == request["id"] and result["output"].startswith(expect)
    assert marker.exists() == (approve is True)
    assert frames[-1]["done"] is True


def test_an_answer_nobody_waits_for_is_an_error_frame(gateway: ServerThread, token: str) -> None:
    with _open(gateway, token) as ws:
        ws.send(json.dumps({"type": "approval", "id": "call_nothing", "approve": True}))
        frame = json.loads(ws.recv(timeout=10))
    assert frame["role"] == "system" and frame["error"] == "no approval pending"


def test_team_chat_relays_tool_frames_and_approvals(
    gateway: ServerThread, token: str, fake: FakeModelServer, workspace: Path
) -> None:
    fake.push(calls(("run_command", {"command": "echo from-team > team.txt"})), Script(reply="done"))
    with _open(gateway, token, "teams/tooling") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        frames = _turn(ws, "make the file", approve=True)
    assert frames[0]["type"] == "routing" and frames[0]["routing_to"] == "toolie"
    (request,) = _of(frames, "approval_request")
    assert request["from_agent"] == "toolie"
    (result,) = _of(frames, "tool_result")
    assert result["from_agent"] == "toolie" and result["output"].startswith("exit code: 0")
    assert (workspace / "team.txt").read_text() == "from-team\n"
