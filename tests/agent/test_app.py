"""The agent program in process (uvicorn on 127.0.0.1, real HTTP) against the fake model server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.app import create_app
from agent.config import AgentConfig
from tests.fakes.model_server import FakeModelServer, Script, echo_count
from tests.fakes.server_thread import ServerThread

TOKEN = "test-agent-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}  # what the gateway sends (controller.agent_token)


def write_token(secrets_dir: Path, token: str = TOKEN) -> None:
    """What the controller mounts at /run/secrets/clawpen-agent-token."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    (secrets_dir / "clawpen-agent-token").write_text(token + "\n")


def env_for(server: FakeModelServer, data_dir: Path, style: str = "openai", **extra: str) -> dict[str, str]:
    write_token(data_dir / "secrets")
    env = {
        "CLAWPEN_AGENT_NAME": "finn",
        "CLAWPEN_AGENT_NAMESPACE": "default",
        "CLAWPEN_AGENT_PROJECT": "ledger",
        "CLAWPEN_PROVIDER": "fake",
        "CLAWPEN_PROVIDER_NAME": "FakeAI",
        "CLAWPEN_API_STYLE": style,
        "CLAWPEN_BASE_URL": server.url if style == "openai" else server.anthropic_url,
        "CLAWPEN_MODEL": "fake-model-1",
        "CLAWPEN_API_KEY_NAME": "",
        "CLAWPEN_SYSTEM_PROMPT": "You are {{name}}, on {{ model }} via {{provider}} for {{project}}.",
        "CLAWPEN_DATA_DIR": str(data_dir),
        "CLAWPEN_SECRETS_DIR": str(data_dir / "secrets"),
        "CLAWPEN_REQUEST_TIMEOUT": "5",
    }
    env.update(extra)
    return env


class Agent:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.server = ServerThread(create_app(AgentConfig.from_env(env))).start()
        self.url = self.server.url

    def chat(self, content: str, session: str | None = None, **body: Any) -> httpx.Response:
        payload: dict[str, Any] = {"messages": [{"role": "user", "content": content}], **body}
        if session:
            payload["session"] = session
        return httpx.post(f"{self.url}/v1/chat/completions", json=payload, headers=AUTH, timeout=10)

    def stream(self, content: str, session: str | None = None) -> list[dict[str, Any]]:
        """The SSE events of a streamed chat, [DONE] as {'done': True}."""
        payload: dict[str, Any] = {"messages": [{"role": "user", "content": content}], "stream": True}
        if session:
            payload["session"] = session
        events = []
        with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=payload, headers=AUTH, timeout=10) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    data = line[6:]
                    events.append({"done": True} if data == "[DONE]" else json.loads(data))
        return events


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events if "choices" in e)


@pytest.fixture
def agent(fake_model: FakeModelServer, tmp_path: Path) -> Iterator[Agent]:
    a = Agent(env_for(fake_model, tmp_path))
    yield a
    a.server.stop()


def test_healthz_ok_when_configured(agent: Agent) -> None:
    resp = httpx.get(f"{agent.url}/healthz")
    assert resp.status_code == 200
    assert resp.json() | {} == {
        "status": "ok",
        "agent": "finn",
        "namespace": "default",
        "provider": "fake",
        "model": "fake-model-1",
    }


def test_models_lists_the_configured_model(agent: Agent) -> None:
    data = httpx.get(f"{agent.url}/v1/models", headers=AUTH).json()["data"]
    assert [m["id"] for m in data] == ["fake-model-1"]


def test_healthz_503_until_model_and_key_are_there(fake_model: FakeModelServer, tmp_path: Path) -> None:
    no_model = Agent(env_for(fake_model, tmp_path, CLAWPEN_MODEL=""))
    try:
        resp = httpx.get(f"{no_model.url}/healthz")
        assert resp.status_code == 503 and "CLAWPEN_MODEL" in resp.json()["reason"]
        chat = no_model.chat("hi")
        assert chat.status_code == 503 and "not ready" in chat.json()["error"]["message"]
        assert fake_model.requests == []
    finally:
        no_model.server.stop()

    keyed = Agent(env_for(fake_model, tmp_path, CLAWPEN_API_KEY_NAME="FAKE_API_KEY"))
    try:
        resp = httpx.get(f"{keyed.url}/healthz")
        assert resp.status_code == 503 and "FAKE_API_KEY not found" in resp.json()["reason"]
        # The secret file appears (the controller mounts it): ready without a restart, key sent upstream.
        (tmp_path / "secrets").mkdir(exist_ok=True)
        (tmp_path / "secrets" / "FAKE_API_KEY").write_text("sk-from-file\n")
        assert httpx.get(f"{keyed.url}/healthz").status_code == 200
        assert keyed.chat("hi").status_code == 200
        assert fake_model.requests[-1].headers["authorization"] == "Bearer sk-from-file"
        assert "sk-from-file" not in httpx.get(f"{keyed.url}/healthz").text
    finally:
        keyed.server.stop()


def test_key_from_environment_when_no_secret_file(fake_model: FakeModelServer, tmp_path: Path) -> None:
    a = Agent(env_for(fake_model, tmp_path, CLAWPEN_API_KEY_NAME="FAKE_API_KEY", FAKE_API_KEY="sk-env"))
    try:
        assert httpx.get(f"{a.url}/healthz").status_code == 200
        a.chat("hi")
        assert fake_model.requests[-1].headers["authorization"] == "Bearer sk-env"
    finally:
        a.server.stop()


def test_stream_delivers_tokens_in_order(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.push(Script(reply="alpha beta gamma delta epsilon"))
    events = agent.stream("go")
    assert events[-1] == {"done": True}
    assert text_of(events) == "alpha beta gamma delta epsilon"
    contents = [
        e["choices"][0]["delta"]["content"]
        for e in events
        if e.get("choices", [{}])[0].get("delta") and "content" in e["choices"][0]["delta"]
    ]
    assert contents == ["alpha ", "beta ", "gamma ", "delta ", "epsilon"]
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


def test_non_stream_reply_and_filled_system_prompt(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.push(Script(reply="fine, thanks"))
    resp = agent.chat("how are you?")
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"] == {"role": "assistant", "content": "fine, thanks"}
    sent = fake_model.requests[0].messages
    assert sent[0] == {"role": "system", "content": "You are finn, on fake-model-1 via FakeAI for ledger."}
    assert sent[1:] == [{"role": "user", "content": "how are you?"}]


def test_without_session_the_agent_is_stateless(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.default = Script(reply=echo_count)
    assert agent.chat("one").json()["choices"][0]["message"]["content"] == "messages=2 system=1 last=one"
    assert agent.chat("two").json()["choices"][0]["message"]["content"] == "messages=2 system=1 last=two"
    assert not (Path(agent.env["CLAWPEN_DATA_DIR"]) / "sessions").exists()


@pytest.mark.parametrize("style", ["openai", "anthropic"])
def test_session_history_is_stored_and_sent_next_turn(fake_model: FakeModelServer, tmp_path: Path, style: str):
    fake_model.default = Script(reply=echo_count)
    a = Agent(env_for(fake_model, tmp_path, style=style))
    try:
        first = text_of(a.stream("my name is Ada", session="s1"))
        assert first.startswith("messages=")
        second = a.chat("what is my name?", session="s1").json()["choices"][0]["message"]["content"]
    finally:
        a.server.stop()
    sent = fake_model.requests[-1].messages
    user_and_assistant = [m for m in sent if m["role"] != "system"]
    assert [m["content"] for m in user_and_assistant] == ["my name is Ada", first, "what is my name?"]
    assert second.endswith("last=what is my name?")
    lines = (tmp_path / "sessions" / "s1.jsonl").read_text().splitlines()
    assert [json.loads(line)["role"] for line in lines] == ["user", "assistant", "user", "assistant"]


def test_session_header_is_accepted(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.default = Script(reply=echo_count)
    headers = {"X-Clawpen-Session": "hdr", **AUTH}
    body = {"messages": [{"role": "user", "content": "a"}]}
    httpx.post(f"{agent.url}/v1/chat/completions", json=body, headers=headers)
    reply = httpx.post(f"{agent.url}/v1/chat/completions", json=body, headers=headers).json()
    assert reply["choices"][0]["message"]["content"] == "messages=4 system=1 last=a"


def test_torn_last_line_is_ignored_and_session_goes_on(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.default = Script(reply=echo_count)
    agent.chat("first", session="torn")
    path = Path(agent.env["CLAWPEN_DATA_DIR"]) / "sessions" / "torn.jsonl"
    with path.open("a") as f:
        f.write('{"role": "user", "content": "half writ')  # a crash mid-append
    reply = agent.chat("second", session="torn").json()["choices"][0]["message"]["content"]
    assert reply == "messages=4 system=1 last=second"  # system + first + its reply + second
    reply = agent.chat("third", session="torn").json()["choices"][0]["message"]["content"]
    assert reply == "messages=6 system=1 last=third"


def test_new_instance_on_same_data_dir_continues_session(fake_model: FakeModelServer, tmp_path: Path) -> None:
    """What happens when the controller replaces the container: /data is the same volume."""
    fake_model.default = Script(reply=echo_count)
    old = Agent(env_for(fake_model, tmp_path))
    old.chat("remember 42", session="main")
    old.server.stop()
    new = Agent(env_for(fake_model, tmp_path, CLAWPEN_MODEL="fake-model-2"))
    try:
        reply = text_of(new.stream("what number?", session="main"))
    finally:
        new.server.stop()
    assert reply == "messages=4 system=1 last=what number?"
    assert fake_model.requests[-1].messages[1] == {"role": "user", "content": "remember 42"}
    assert fake_model.requests[-1].body["model"] == "fake-model-2"


def test_concurrent_turns_of_one_session_are_serialised(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.default = Script(reply=echo_count, chunk_delay=0.02)

    async def both() -> list[str]:
        async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:

            async def turn(text: str) -> str:
                body = {"messages": [{"role": "user", "content": text}], "session": "busy"}
                resp = await client.post(f"{agent.url}/v1/chat/completions", json=body)
                return resp.json()["choices"][0]["message"]["content"]

            return list(await asyncio.gather(turn("a"), turn("b")))

    replies = asyncio.run(both())
    # One turn saw no history, the other saw the first one's question and answer.
    assert sorted(r.split(" ")[0] for r in replies) == ["messages=2", "messages=4"]


def test_client_disconnect_cancels_upstream_and_stores_nothing(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.push(Script(reply=" ".join(f"w{i}" for i in range(100)), chunk_delay=0.05))
    body = {"messages": [{"role": "user", "content": "long story"}], "stream": True, "session": "gone"}
    with httpx.stream("POST", f"{agent.url}/v1/chat/completions", json=body, headers=AUTH, timeout=10) as resp:
        for line in resp.iter_lines():
            if '"content"' in line:
                break  # first token seen; now hang up
    assert fake_model.wait_for(lambda: fake_model.requests and fake_model.requests[0].disconnected, 10)
    assert not fake_model.requests[0].completed
    assert not (Path(agent.env["CLAWPEN_DATA_DIR"]) / "sessions" / "gone.jsonl").exists()


@pytest.mark.parametrize(
    ("script", "status", "code"),
    [
        (Script(status=401, error_message="bad key"), 502, "auth"),
        (Script(status=500, error_message="boom"), 502, "upstream"),
    ],
)
def test_provider_error_non_stream(agent: Agent, fake_model: FakeModelServer, script, status, code) -> None:
    fake_model.default = script
    resp = agent.chat("hi", session="err")
    assert resp.status_code == status
    err = resp.json()["error"]
    assert err["code"] == code and err["provider"] == "FakeAI" and "FakeAI" in err["message"]
    assert not (Path(agent.env["CLAWPEN_DATA_DIR"]) / "sessions" / "err.jsonl").exists()


def test_rate_limit_non_stream_passes_retry_after(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.default = Script(status=429, retry_after="120")
    resp = agent.chat("hi")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "120"
    assert resp.json()["error"]["code"] == "rate_limited"


def test_provider_error_in_stream_is_an_error_event(agent: Agent, fake_model: FakeModelServer) -> None:
    fake_model.push(Script(reply="one two three", drop_after=1))
    events = agent.stream("hi")
    assert text_of(events) == "one "
    assert events[-1]["error"]["code"] == "dropped" and "FakeAI" in events[-1]["error"]["message"]
    assert {"done": True} not in events

    fake_model.push(Script(status=401))
    events = agent.stream("hi")
    assert events[-1]["error"]["code"] == "auth" and "401" in events[-1]["error"]["message"]


def test_timeout_in_stream_is_an_error_event(fake_model: FakeModelServer, tmp_path: Path) -> None:
    a = Agent(env_for(fake_model, tmp_path, CLAWPEN_REQUEST_TIMEOUT="0.3"))
    try:
        fake_model.push(Script(delay=3))
        events = a.stream("hi")
    finally:
        a.server.stop()
    assert events[-1]["error"]["code"] == "timeout" and "timed out" in events[-1]["error"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "session": "../etc/passwd"}, "invalid session id"),
        ({"messages": []}, "'messages' must be a non-empty list"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role must be one of"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content must be a string"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "'stream' must be true or false"),
    ],
)
def test_bad_requests_get_clear_400(agent: Agent, body: dict, needle: str) -> None:
    resp = httpx.post(f"{agent.url}/v1/chat/completions", json=body, headers=AUTH)
    assert resp.status_code == 400 and needle in resp.json()["error"]["message"]


def test_invalid_json_is_400(agent: Agent) -> None:
    resp = httpx.post(f"{agent.url}/v1/chat/completions", content=b"{not json", headers=AUTH)
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]


def test_content_parts_are_accepted(agent: Agent, fake_model: FakeModelServer) -> None:
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]}]
    }
    assert httpx.post(f"{agent.url}/v1/chat/completions", json=body, headers=AUTH).status_code == 200
    assert fake_model.requests[0].messages[-1] == {"role": "user", "content": "hello"}


def test_optional_key_may_be_absent(fake_model: FakeModelServer, tmp_path: Path) -> None:
    env = env_for(fake_model, tmp_path, CLAWPEN_API_KEY_NAME="VLLM_API_KEY", CLAWPEN_API_KEY_OPTIONAL="true")
    a = Agent(env)
    try:
        assert httpx.get(f"{a.url}/healthz").status_code == 200
        assert a.chat("hi").status_code == 200
        assert "authorization" not in fake_model.requests[-1].headers
    finally:
        a.server.stop()


def test_long_history_is_trimmed_to_the_recent_part(fake_model: FakeModelServer, tmp_path: Path) -> None:
    fake_model.default = Script(reply="ok")  # 2 characters per reply
    a = Agent(env_for(fake_model, tmp_path, CLAWPEN_HISTORY_CHARS="20", CLAWPEN_SYSTEM_PROMPT=""))
    try:
        for word in ("aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd"):
            a.chat(word, session="long")
    finally:
        a.server.stop()
    # The last turn sent the newest history that fits 20 characters, starting at a user turn.
    assert fake_model.requests[-1].messages == [
        {"role": "user", "content": "bbbbbbbb"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "cccccccc"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "dddddddd"},
    ]
    assert len((tmp_path / "sessions" / "long.jsonl").read_text().splitlines()) == 8  # the file keeps all
