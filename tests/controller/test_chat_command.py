"""`clawpen chat` against a real agent app (in-process uvicorn) and the fake model server."""

from __future__ import annotations

import asyncio
import io
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app import create_app
from agent.config import AgentConfig
from controller.agent_token import FileAgentTokens
from controller.cli import main
from controller.resources import API_VERSION, Agent, AgentStatus, Phase, parse_resource
from controller.settings import Settings
from controller.wiring import open_store
from tests.fakes.model_server import FakeModelServer, Script, echo_count
from tests.fakes.server_thread import ServerThread


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


TOKEN = "cli-agent-token"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLAWPEN_HOME holding agent finn's token, as the controller keeps it."""
    home = tmp_path / "home"
    monkeypatch.setenv("CLAWPEN_HOME", str(home))
    monkeypatch.setenv("CLAWPEN_STORE", "files")
    monkeypatch.delenv("CLAWPEN_NAMESPACE", raising=False)
    asyncio.run(FileAgentTokens(home).put("default/finn", TOKEN))
    return home


def agent_env(model: FakeModelServer, data_dir: Path, **extra: str) -> dict[str, str]:
    secrets = data_dir / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "clawpen-agent-token").write_text(TOKEN)
    env = {
        "CLAWPEN_SECRETS_DIR": str(secrets),
        "CLAWPEN_AGENT_NAME": "finn",
        "CLAWPEN_PROVIDER_NAME": "FakeAI",
        "CLAWPEN_API_STYLE": "openai",
        "CLAWPEN_BASE_URL": model.url,
        "CLAWPEN_MODEL": "fake-1",
        "CLAWPEN_DATA_DIR": str(data_dir),
    }
    return env | extra


@pytest.fixture
def agent_url(model: FakeModelServer, tmp_path: Path) -> Iterator[str]:
    model.reset()
    with ServerThread(create_app(AgentConfig.from_env(agent_env(model, tmp_path)))) as url:
        yield url


def run(args: list[str], stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["chat", *args])


def test_one_message_prints_the_streamed_reply(agent_url: str, model: FakeModelServer, capsys) -> None:
    model.push(Script(reply="hello from finn"))
    assert run(["finn", "--endpoint", agent_url, "-m", "hi"]) == 0
    assert capsys.readouterr().out == "hello from finn\n"
    assert model.requests[0].messages[-1] == {"role": "user", "content": "hi"}


def test_piped_conversation_keeps_history(agent_url: str, model: FakeModelServer, capsys, monkeypatch) -> None:
    model.default = Script(reply=echo_count)
    code = run(["finn", "--endpoint", agent_url, "--session", "cli"], "first\n\nsecond\n", monkeypatch)
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "messages=1 system=0 last=first",
        "messages=3 system=0 last=second",  # the agent sent the first turn along: same session
    ]


def test_default_session_is_main(agent_url: str, model: FakeModelServer, tmp_path: Path) -> None:
    run(["finn", "--endpoint", agent_url, "-m", "x"])
    assert (tmp_path / "sessions" / "main.jsonl").exists()


def test_provider_error_is_one_clear_line(agent_url: str, model: FakeModelServer, capsys) -> None:
    model.push(Script(status=401, error_message="Incorrect API key"))
    assert run(["finn", "--endpoint", agent_url, "-m", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: FakeAI: HTTP 401 unauthorized (check the API key): Incorrect API key"


def test_unready_agent_says_why(model: FakeModelServer, tmp_path: Path, capsys) -> None:
    app = create_app(AgentConfig.from_env(agent_env(model, tmp_path, CLAWPEN_MODEL="")))
    with ServerThread(app) as url:
        assert run(["finn", "--endpoint", url, "-m", "hi"]) == 1
    assert "error: agent default/finn is not ready: no model configured" in capsys.readouterr().err


def test_unreachable_agent(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run(["finn", "--endpoint", f"http://127.0.0.1:{port}", "-m", "hi"]) == 1
    assert f"error: cannot reach agent default/finn at http://127.0.0.1:{port}" in capsys.readouterr().err


def test_bad_session_id(capsys) -> None:
    assert run(["finn", "--endpoint", "http://127.0.0.1:1", "--session", "a/b", "-m", "hi"]) == 1
    assert "error: --session: invalid session id 'a/b'" in capsys.readouterr().err


# ---- the endpoint comes from the agent's status in the store (what users do) ---------------------------


def put_agent(home: Path, name: str, status: AgentStatus | None) -> None:
    async def write() -> None:
        store = open_store(Settings.from_env())
        try:
            agent = parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": {}})
            await store.create(agent)
            if status is not None:
                await store.update_status(Agent, name, status)
        finally:
            await store.close()

    asyncio.run(write())


def test_endpoint_is_read_from_the_agent_status(home: Path, agent_url: str, model: FakeModelServer, capsys) -> None:
    put_agent(home, "finn", AgentStatus(phase=Phase.RUNNING, endpoint=agent_url + "/"))
    model.push(Script(reply="via the store"))
    assert run(["finn", "-m", "hi"]) == 0
    assert capsys.readouterr().out == "via the store\n"


def test_agent_without_endpoint_says_so(home: Path, capsys) -> None:
    put_agent(home, "idle", AgentStatus(phase=Phase.PENDING))
    assert run(["idle", "-m", "hi"]) == 1
    err = capsys.readouterr().err
    assert "error: agent default/idle has no endpoint yet (phase Pending)" in err


def test_unknown_agent_is_one_line(home: Path, capsys) -> None:
    assert run(["ghost", "-m", "hi"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "ghost" in err and "\n" not in err


# ---- tools: compact tool lines on stderr, y/N approvals -----------------------------------------------
def test_tool_activity_is_shown_and_approval_asked(model: FakeModelServer, tmp_path: Path, capsys, monkeypatch) -> None:
    import json

    from tests.fakes.model_server import calls

    model.reset()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    tools = json.dumps({"builtin": ["write_file", "run_command"], "approval": {"run_command": "always"}})
    env = agent_env(model, tmp_path, CLAWPEN_TOOLS=tools, CLAWPEN_WORKSPACE=str(workspace))
    model.push(
        calls(("write_file", {"path": "a.txt", "content": "A"})),
        calls(("run_command", {"command": "touch yes"})),
        Script(reply="first done"),
        calls(("run_command", {"command": "touch no"})),
        Script(reply="second done"),
    )
    with ServerThread(create_app(AgentConfig.from_env(env))) as url:
        code = run(["finn", "--endpoint", url, "--session", "t"], "go\ny\nagain\nn\n", monkeypatch)
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["first done", "second done"]
    err = captured.err
    assert '[tool] write_file {"path": "a.txt", "content": "A"}' in err
    assert "[tool] write_file ok: wrote 1 bytes to a.txt (1 lines)" in err
    assert err.count('? approve run_command {"command": "touch') == 2
    assert "[tool] run_command ok: exit code: 0" in err
    assert "[tool] run_command error: denied: the user refused to run run_command" in err
    assert (workspace / "yes").exists() and not (workspace / "no").exists()


def test_quit_is_a_command_not_a_message(agent_url: str, model: FakeModelServer, home: Path) -> None:
    """Through the real process, as piped input: `/quit` ends the chat; nothing after it is sent."""
    import os
    import subprocess

    model.push(Script(reply="first answer"))
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "chat", "finn", "--endpoint", agent_url],
        input="hello\n/quit\nnever sent\n",
        capture_output=True,
        text=True,
        env={**os.environ, "CLAWPEN_HOME": str(home)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "first answer\n"
    assert [r.messages[-1]["content"] for r in model.requests] == ["hello"]
