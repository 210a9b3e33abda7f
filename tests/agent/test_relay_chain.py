"""The whole chat chain without containers: WebSocket client → gateway → agent program → fake model.

Every hop is the real component over real sockets (the gateway and the agent app each in their own
uvicorn thread, the file store on disk); only the model is fake. This is what a user of the web UI
gets: tokens in order, history per session across an agent replacement, provider errors as error
frames, and a closed browser tab stopping the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from agent.app import create_app
from agent.config import AgentConfig
from controller.resources import API_VERSION, Agent, AgentStatus, Phase, parse_resource
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread as GatewayThread
from tests.fakes.model_server import FakeModelServer, Script, echo_count
from tests.fakes.server_thread import ServerThread

TOKEN = "relay-chain-agent-token"


def agent_server(model: FakeModelServer, data_dir: Path, **extra: str) -> ServerThread:
    """The agent program with the token the controller would mount (the gateway holds the same)."""
    secrets = data_dir.parent / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "clawpen-agent-token").write_text(TOKEN)
    env = {
        "CLAWPEN_SECRETS_DIR": str(secrets),
        "CLAWPEN_AGENT_NAME": "relay",
        "CLAWPEN_PROVIDER_NAME": "FakeAI",
        "CLAWPEN_API_STYLE": "openai",
        "CLAWPEN_BASE_URL": model.url,
        "CLAWPEN_MODEL": "fake-1",
        "CLAWPEN_DATA_DIR": str(data_dir),
        "CLAWPEN_REQUEST_TIMEOUT": "5",
        **extra,
    }
    return ServerThread(create_app(AgentConfig.from_env(env))).start()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    server = start_gateway(tmp_path_factory.mktemp("home"))
    doc = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "relay"}, "spec": {}}
    server.call(server.app.state.deps.store.create(parse_resource(doc)))
    server.call(server.app.state.deps.tokens.put("default/relay", TOKEN))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(gateway: GatewayThread) -> str:
    return str(login(gateway.url)["access_token"])


def point_agent_at(gateway: GatewayThread, url: str) -> None:
    """What the controller does once the container answers: status Running with its endpoint."""
    status = AgentStatus(phase=Phase.RUNNING, endpoint=url)
    gateway.call(gateway.app.state.deps.store.update_status(Agent, "relay", status))


@pytest.fixture
def agent(gateway: GatewayThread, fake_model: FakeModelServer, tmp_path: Path) -> Iterator[ServerThread]:
    server = agent_server(fake_model, tmp_path / "data")
    point_agent_at(gateway, server.url)
    yield server
    server.stop()


def open_chat(gateway: GatewayThread, token: str) -> ClientConnection:
    return connect(f"{gateway.ws_url}/api/agents/relay/chat?token={token}")


def turn(ws: ClientConnection, content: str, session: str | None = None) -> list[dict[str, Any]]:
    frame: dict[str, Any] = {"content": content}
    if session:
        frame["session"] = session
    ws.send(json.dumps(frame))
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=15)))
        if frames[-1].get("done") or frames[-1].get("error"):
            return frames


def test_tokens_arrive_in_order_then_done(
    gateway: GatewayThread, token: str, agent: ServerThread, fake_model: FakeModelServer
) -> None:
    fake_model.push(Script(reply="one two three four five"))
    with open_chat(gateway, token) as ws:
        frames = turn(ws, "count")
    assert [f["content"] for f in frames if f.get("delta")] == ["one ", "two ", "three ", "four ", "five"]
    assert frames[-1]["done"] is True and frames[-1]["content"] == "one two three four five"


def test_session_continues_across_agent_replacement(
    gateway: GatewayThread, token: str, fake_model: FakeModelServer, tmp_path: Path
) -> None:
    fake_model.default = Script(reply=echo_count)
    data = tmp_path / "data"  # the agent's /data volume, kept when the container is replaced
    first = agent_server(fake_model, data)
    point_agent_at(gateway, first.url)
    try:
        with open_chat(gateway, token) as ws:
            assert turn(ws, "remember 9")[-1]["content"] == "messages=1 system=0 last=remember 9"
    finally:
        first.stop()
    second = agent_server(fake_model, data, CLAWPEN_MODEL="fake-2")  # e.g. the model changed
    point_agent_at(gateway, second.url)
    try:
        with open_chat(gateway, token) as ws:
            done = turn(ws, "which number?")[-1]
            other = turn(ws, "fresh", session="other")[-1]
    finally:
        second.stop()
    assert done["content"] == "messages=3 system=0 last=which number?"  # default session "main" went on
    assert fake_model.requests[-2].messages[0] == {"role": "user", "content": "remember 9"}
    assert other["content"] == "messages=1 system=0 last=fresh"


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        (Script(status=401, error_message="bad key"), "FakeAI: HTTP 401 unauthorized"),
        (Script(status=429, retry_after="600"), "FakeAI: HTTP 429 rate limited, retry after 600s"),
        (Script(status=500, error_message="melted"), "FakeAI: HTTP 500 server error: melted"),
        (Script(reply="a b c d", drop_after=2), "FakeAI: the connection dropped before the reply was complete"),
    ],
)
def test_provider_errors_become_error_frames(
    gateway: GatewayThread, token: str, agent: ServerThread, fake_model: FakeModelServer, script: Script, needle: str
) -> None:
    fake_model.push(script)
    fake_model.default = Script(reply="recovered")
    with open_chat(gateway, token) as ws:
        frames = turn(ws, "hi")
        assert frames[-1]["role"] == "system" and needle in frames[-1]["content"]
        assert turn(ws, "again")[-1]["content"] == "recovered"  # the socket stays usable


def test_model_timeout_is_an_error_frame(
    gateway: GatewayThread, token: str, fake_model: FakeModelServer, tmp_path: Path
) -> None:
    slow = agent_server(fake_model, tmp_path / "data", CLAWPEN_REQUEST_TIMEOUT="0.3")
    point_agent_at(gateway, slow.url)
    fake_model.push(Script(delay=3))
    try:
        with open_chat(gateway, token) as ws:
            frame = turn(ws, "hi")[-1]
    finally:
        slow.stop()
    assert frame["role"] == "system" and "FakeAI: no answer: timed out after 0.3s" in frame["content"]


def test_closing_the_socket_stops_the_model(
    gateway: GatewayThread, token: str, agent: ServerThread, fake_model: FakeModelServer
) -> None:
    fake_model.push(Script(reply=" ".join(f"w{i}" for i in range(200)), chunk_delay=0.05))
    with open_chat(gateway, token) as ws:
        ws.send(json.dumps({"content": "tell me a long story"}))
        assert json.loads(ws.recv(timeout=10))["content"] == "w0 "
    assert fake_model.wait_for(lambda: bool(fake_model.requests) and fake_model.requests[0].disconnected, 10)
    assert not fake_model.requests[0].completed
