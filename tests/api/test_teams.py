"""/api/teams over real HTTP and WebSockets: list, get, classify, reload, and routed team chat.

Real parts: the gateway under uvicorn with its file store, team files in a temporary directory, and
one real agent program (agent/app.py, in process, real HTTP) per team agent. The only fake is the
model provider: one fake model server answers both the team router's classification requests (by
reading the prompt, like tests/controller/teams/scripted_model.py) and the agents' chat requests
(with "<agent name> heard: <message>", so the test can see which agent program answered).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from agent.app import create_app as create_agent_app
from agent.config import AgentConfig
from controller.resources import Agent, AgentStatus, Phase
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread
from tests.controller.teams.scripted_model import ScriptedModel
from tests.fakes.model_server import FakeModelServer, Script, last_user_message
from tests.fakes.server_thread import ServerThread as AppThread

ROOT = Path(__file__).resolve().parents[2]
ROUTER_PROMPT = "You route messages for the team"
RUNNING_AGENTS = ("remy", "pax", "rae")  # rex (the reporter) is deliberately missing


def model_reply(body: dict[str, Any]) -> str:
    messages = body.get("messages", [])
    system = next((m["content"] for m in messages if m.get("role") == "system"), "") or body.get("system", "")
    if ROUTER_PROMPT in system:
        intent, confidence = ScriptedModel().choose(system, last_user_message(body))
        return json.dumps({"intent": intent, "confidence": confidence, "reasoning": "fake router"})
    match = re.search(r"You are (\w+)", system)
    return f"{match.group(1) if match else 'nobody'} heard: {last_user_message(body)}"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    server = FakeModelServer(host="127.0.0.1").start()
    server.default = Script(reply=model_reply)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def teams_dir(tmp_path_factory: pytest.TempPathFactory, fake: FakeModelServer) -> Path:
    """The shipped teams, with their routers pointed at the fake model (an OpenAI-style local server)."""
    directory = tmp_path_factory.mktemp("teams")
    for path in (ROOT / "teams").glob("*.toml"):
        text = re.sub(r'provider = "\w+"', f'provider = "ollama"\nbase_url = "{fake.url}"', path.read_text())
        (directory / path.name).write_text(text)
    return directory


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory, fake: FakeModelServer) -> Iterator[dict[str, AppThread]]:
    servers = {}
    for name in RUNNING_AGENTS:
        data = tmp_path_factory.mktemp(f"agent-{name}")
        (data / "secrets").mkdir()
        (data / "secrets" / "clawpen-agent-token").write_text(f"token-of-{name}")  # what the controller mounts
        config = AgentConfig.from_env(
            {
                "CLAWPEN_AGENT_NAME": name,
                "CLAWPEN_PROVIDER": "ollama",
                "CLAWPEN_API_STYLE": "openai",
                "CLAWPEN_BASE_URL": fake.url,
                "CLAWPEN_MODEL": "fake-model",
                "CLAWPEN_API_KEY_NAME": "",
                "CLAWPEN_SYSTEM_PROMPT": "You are {{name}}.",
                "CLAWPEN_DATA_DIR": str(data),
                "CLAWPEN_SECRETS_DIR": str(data / "secrets"),
                "CLAWPEN_REQUEST_TIMEOUT": "10",
            }
        )
        servers[name] = AppThread(create_agent_app(config)).start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, teams_dir: Path, agents: dict[str, AppThread]
) -> Iterator[ServerThread]:
    server = start_gateway(tmp_path_factory.mktemp("home"), teams_dir=teams_dir)
    store = server.app.state.deps.store
    for name, agent_server in agents.items():  # what the controller would have written
        server.call(store.create(Agent.model_validate({"metadata": {"name": name}, "spec": {"model": "fake"}})))
        server.call(store.update_status(Agent, name, AgentStatus(phase=Phase.RUNNING, endpoint=agent_server.url)))
        server.call(server.app.state.deps.tokens.put(f"default/{name}", f"token-of-{name}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(gateway: ServerThread) -> dict[str, Any]:
    return login(gateway.url)


@pytest.fixture(scope="module")
def client(gateway: ServerThread, tokens: dict[str, Any]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=20) as c:
        yield c


# ---- HTTP -----------------------------------------------------------------------------------------


def test_list_teams_with_status(client: httpx.Client) -> None:
    answer = client.get("/api/teams")
    assert answer.status_code == 200
    teams = {t["id"]: t for t in answer.json()}
    assert set(teams) == {"finance-team", "platform-support"}
    finance = teams["finance-team"]
    assert finance["name"] == "Finance AI Team" and finance["source"] == "file" and finance["mode"] == "hybrid"
    assert [(i["intent"], i["agent"]) for i in finance["intents"]] == [
        ("receipts", "remy"),
        ("payables", "pax"),
        ("receivables", "rae"),
        ("reporter", "rex"),
    ]
    assert finance["status"] == {
        "phase": "Degraded",
        "message": "missing agents: rex",
        "missing_agents": ["rex"],
        "not_running_agents": [],
    }
    assert teams["platform-support"]["status"]["missing_agents"] == ["ivy", "dex", "ace", "cal", "hal"]


def test_get_team_and_not_found(client: httpx.Client) -> None:
    team = client.get("/api/teams/platform-support").json()
    assert team["fallback_intent"] == "helpdesk" and team["intents"][0]["keywords"][0] == "outage"
    for bad in ("nope", "Bad_Name", "x" * 70):
        answer = client.get(f"/api/teams/{bad}")
        assert answer.status_code == 404 and "not found" in answer.json()["error"]


def test_classify_by_keywords(client: httpx.Client, fake: FakeModelServer) -> None:
    before = len(fake.requests)
    answer = client.post("/api/teams/finance-team/classify", json={"message": "Here's the receipt for lunch"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["intent"], body["agent"], body["method"]) == ("receipts", "remy", "keyword")
    assert body["matched_keywords"] == ["receipt"] and body["confidence"] >= 0.7
    assert body["needs_clarification"] is False
    assert len(fake.requests) == before  # confident keywords: the model was not asked


def test_classify_explains_a_semantic_decision_without_a_model_call(
    client: httpx.Client, fake: FakeModelServer
) -> None:
    before = len(fake.requests)
    body = client.post("/api/teams/finance-team/classify", json={"message": "Are we profitable yet?"}).json()
    assert (body["method"], body["mode"], body["intent"], body["agent"]) == ("semantic", "hybrid", "reporter", "rex")
    assert body["reasoning"].startswith("semantic: nearest to reporter") and "margin" in body["reasoning"]
    tops = body["top_intents"]
    assert tops[0]["intent"] == "reporter" and len(tops) == 3 and tops[0]["score"] > tops[1]["score"]
    assert len(fake.requests) == before  # keywords unsure, semantic sure: the model was not asked


def test_classify_asks_the_model_when_keywords_and_semantic_are_unsure(
    client: httpx.Client, fake: FakeModelServer
) -> None:
    before = len(fake.requests)
    body = client.post("/api/teams/finance-team/classify", json={"message": "Write me a haiku about autumn"}).json()
    assert body["method"] in ("llm", "clarify") and body["reasoning"].startswith("model answer")
    [asked] = fake.requests[before:]
    system = asked.messages[0]["content"]
    assert ROUTER_PROMPT in system and "reporter: Numbers and overviews" in system


def test_classify_bad_requests(client: httpx.Client) -> None:
    assert client.post("/api/teams/finance-team/classify", json={}).status_code == 422
    assert client.post("/api/teams/finance-team/classify", json={"message": ""}).status_code == 422
    assert client.post("/api/teams/finance-team/classify", json={"message": "x", "extra": 1}).status_code == 422
    assert client.post("/api/teams/finance-team/classify", content=b"{nope").status_code == 400
    assert client.post("/api/teams/nope/classify", json={"message": "hi"}).status_code == 404


def test_reload_picks_up_new_and_broken_files(client: httpx.Client, teams_dir: Path) -> None:
    shutil.copy(teams_dir / "finance-team.toml", teams_dir / "finance-copy.toml")
    (teams_dir / "finance-copy.toml").write_text(
        (teams_dir / "finance-team.toml").read_text().replace('id = "finance-team"', 'id = "finance-copy"')
    )
    (teams_dir / "broken.toml").write_text("[team]\nname = 'Broken'\n[router]\nmode = 'psychic'\n")
    try:
        body = client.post("/api/teams/reload").json()
        assert body["teams"] == ["finance-copy", "finance-team", "platform-support"]
        [error] = body["errors"]
        assert error["file"].endswith("broken.toml") and "[router].mode" in error["message"]
        assert client.get("/api/teams/finance-copy").status_code == 200
    finally:
        (teams_dir / "finance-copy.toml").unlink()
        (teams_dir / "broken.toml").unlink()
    assert client.post("/api/teams/reload").json() == {"teams": ["finance-team", "platform-support"], "errors": []}
    assert client.get("/api/teams/finance-copy").status_code == 404


def test_teams_need_a_token(gateway: ServerThread) -> None:
    assert httpx.get(f"{gateway.url}/api/teams").status_code == 401


# ---- WebSocket chat -------------------------------------------------------------------------------


def _open(gateway: ServerThread, tokens: dict[str, Any], team: str) -> ClientConnection:
    return connect(f"{gateway.ws_url}/api/teams/{team}/chat?token={tokens['access_token']}")


def _recv(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=20))  # type: ignore[no-any-return]


def _exchange(ws: ClientConnection, content: str) -> list[dict[str, Any]]:
    """Send one message; frames until the agent's done/error frame or a clarification question."""
    ws.send(json.dumps({"content": content}))
    frames = []
    while True:
        frame = _recv(ws)
        frames.append(frame)
        if frame.get("done") or frame.get("error") or frame.get("type") == "clarification":
            return frames


def test_team_chat_routes_streams_sticks_and_moves(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    with _open(gateway, tokens, "finance-team") as ws:
        welcome = _recv(ws)
        assert welcome["type"] == "welcome" and welcome["team"] == "finance-team"
        assert [i["agent"] for i in welcome["intents"]] == ["remy", "pax", "rae", "rex"]

        frames = _exchange(ws, "Here's the receipt for the team lunch")
        ack, *answer = frames
        assert ack["type"] == "routing" and ack["routing_to"] == "remy"
        assert ack["content"] == "Let me pass this to remy..."
        assert ack["classification"]["intent"] == "receipts" and ack["classification"]["method"] == "keyword"
        explained = ack["classification"]
        assert explained["mode"] == "hybrid" and explained["top_intents"][0]["intent"] == "receipts"
        assert explained["reasoning"].startswith("keyword hit")
        assert answer and all(f["from_agent"] == "remy" for f in answer)
        assert any(f.get("delta") for f in answer), "the agent's answer is streamed"
        assert answer[-1]["done"]
        assert answer[-1]["content"] == "[remy] remy heard: Here's the receipt for the team lunch"

        follow = _exchange(ws, "and the one from Tuesday too")
        assert follow[0]["routing_to"] == "remy" and follow[0]["classification"]["method"] == "sticky"
        assert follow[-1]["content"] == "[remy] remy heard: and the one from Tuesday too"

        moved = _exchange(ws, "Now create an invoice for the Johnson project")
        assert moved[0]["routing_to"] == "rae" and moved[-1]["from_agent"] == "rae"
        assert moved[-1]["content"] == "[rae] rae heard: Now create an invoice for the Johnson project"


def test_team_chat_clarifies_then_forwards_the_original(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    with _open(gateway, tokens, "finance-team") as ws:
        _recv(ws)
        [question] = _exchange(ws, "Write me a haiku about autumn")  # off-topic; no fallback: ask
        assert question["type"] == "clarification" and question["classification"]["needs_clarification"]
        assert [o["intent"] for o in question["options"]] == ["receipts", "payables", "receivables", "reporter"]
        assert "• payables: Money we owe" in question["content"]
        frames = _exchange(ws, "2")
        assert frames[0]["routing_to"] == "pax" and frames[0]["classification"]["method"] == "user"
        assert frames[-1]["content"] == "[pax] pax heard: Write me a haiku about autumn"


def test_agent_session_history_is_kept_per_team_session(
    gateway: ServerThread, tokens: dict[str, Any], fake: FakeModelServer
) -> None:
    with _open(gateway, tokens, "finance-team") as ws:
        _recv(ws)
        ws.send(json.dumps({"content": "Here's a receipt for paper", "session": "history-1"}))
        while not _recv(ws).get("done"):
            pass
        before = len(fake.requests)
        ws.send(json.dumps({"content": "and another receipt for pens", "session": "history-1"}))
        while not _recv(ws).get("done"):
            pass
    to_agent = [r for r in fake.requests[before:] if ROUTER_PROMPT not in str(r.messages[:1])]
    contents = [m["content"] for m in to_agent[-1].messages]
    assert "Here's a receipt for paper" in contents and contents[-1] == "and another receipt for pens"


def test_missing_agent_gets_an_error_frame_and_chat_continues(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    with _open(gateway, tokens, "finance-team") as ws:
        _recv(ws)
        ack, error = _exchange(ws, "Generate a profit and loss report for Q3")
        assert ack["routing_to"] == "rex"
        assert error["role"] == "system" and error["from_agent"] == "rex" and "does not exist" in error["content"]
        assert _exchange(ws, "Here's the receipt for a taxi")[-1]["done"]


def test_bad_frame_and_unknown_team(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    with _open(gateway, tokens, "finance-team") as ws:
        _recv(ws)
        ws.send("not json")
        assert _recv(ws)["error"] == "bad frame"
    with _open(gateway, tokens, "no-such-team") as ws:
        frame = _recv(ws)
        assert frame["error"] == "unknown team" and "no-such-team" in frame["content"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_applied_team_resource_is_listed_and_wins_over_a_file(client: httpx.Client, gateway: ServerThread) -> None:
    from controller.resources import Team
    from controller.teams.toml_format import load_team_file

    team = load_team_file(ROOT / "teams" / "finance-team.toml")
    team.spec.display_name = "Finance (applied)"
    team.spec.router.mode = "keyword"
    store = gateway.app.state.deps.store
    gateway.call(store.create(Team(metadata=team.metadata, spec=team.spec)))
    try:
        got = client.get("/api/teams/finance-team").json()
        assert got["source"] == "store" and got["name"] == "Finance (applied)" and got["mode"] == "keyword"
        assert [t["id"] for t in client.get("/api/teams").json()] == ["finance-team", "platform-support"]
    finally:
        gateway.call(store.delete(Team, "finance-team"))
    assert client.get("/api/teams/finance-team").json()["source"] == "file"


def test_router_key_comes_from_the_secret_store(client: httpx.Client, teams_dir: Path, fake: FakeModelServer) -> None:
    keyed = teams_dir / "keyed-finance.toml"
    text = (teams_dir / "finance-team.toml").read_text().replace('id = "finance-team"', 'id = "keyed-finance"')
    text = text.replace("confidence_threshold = 0.7", "confidence_threshold = 0.7\nsimilarity_floor = 0.99")
    keyed.write_text(text.replace('provider = "ollama"', 'provider = "openai"'))  # semantic never sure: ask
    message = {"message": "What is our current cash position?"}
    try:
        assert client.post("/api/teams/reload").json()["errors"] == []
        if "OPENAI_API_KEY" not in os.environ:
            before = client.post("/api/teams/keyed-finance/classify", json=message).json()
            assert before["method"] != "llm" and "no model configured" in before["reasoning"]
        secret = {"name": "OPENAI_API_KEY", "value": "sk-router-test"}
        assert client.post("/api/secrets", json=secret).status_code in (200, 201)
        count = len(fake.requests)
        answer = client.post("/api/teams/keyed-finance/classify", json=message)
        assert answer.json()["method"] == "llm" and answer.json()["intent"] == "reporter"
        [asked] = fake.requests[count:]
        assert asked.headers.get("authorization") == "Bearer sk-router-test"
        assert "sk-router-test" not in answer.text
    finally:
        keyed.unlink()
        client.delete("/api/secrets/OPENAI_API_KEY")
        client.post("/api/teams/reload")


def test_team_chat_routing_frame_explains_semantic_routing(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    with _open(gateway, tokens, "finance-team") as ws:
        _recv(ws)
        ack, *_ = _exchange(ws, "Can I claim back the taxi fare from the airport?")
        c = ack["classification"]
        assert ack["routing_to"] == "remy" and (c["method"], c["mode"]) == ("semantic", "hybrid")
        assert "margin" in c["reasoning"] and c["top_intents"][0]["intent"] == "receipts"


def test_learn_stores_a_clarification_pick_and_routes_it_next_time(
    gateway: ServerThread, tokens: dict[str, Any], teams_dir: Path
) -> None:
    text = (teams_dir / "finance-team.toml").read_text()
    learning = text.replace("confidence_threshold = 0.7", "confidence_threshold = 0.7\nlearn = true")
    learning = learning.replace('id = "finance-team"', 'id = "finance-learns"')
    (teams_dir / "finance-learns.toml").write_text(learning)
    message = "Sort out the window cleaners"
    try:
        with _open(gateway, tokens, "finance-learns") as ws:
            _recv(ws)
            [question] = _exchange(ws, message)
            assert question["type"] == "clarification"
            picked = _exchange(ws, "payables")
            assert picked[0]["routing_to"] == "pax" and picked[0]["classification"]["method"] == "user"
        assert (teams_dir / "finance-learns.toml").read_text() == learning  # the user's file is untouched
        with _open(gateway, tokens, "finance-learns") as ws:
            _recv(ws)
            ack, *_ = _exchange(ws, message)
            assert ack["type"] == "routing" and ack["routing_to"] == "pax"
            assert ack["classification"]["method"] == "semantic"
    finally:
        (teams_dir / "finance-learns.toml").unlink()
