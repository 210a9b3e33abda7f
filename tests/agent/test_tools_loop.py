"""The tool loop in process: the agent program on real HTTP, a scripted fake model asking for tool
calls in both wire styles, the built-ins on a real temporary workspace."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.sessions import SessionStore
from tests.agent.test_app import AUTH, Agent, env_for, text_of
from tests.fakes.model_server import FakeModelServer, Script, calls, tool_names, tool_results

STYLES = ["openai", "anthropic"]


def tools_env(**overrides: Any) -> str:
    config: dict[str, Any] = {"builtin": ["read_file", "write_file", "list_files", "run_command"]}
    config.update(overrides)
    return json.dumps(config)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


def make_agent(fake: FakeModelServer, tmp: Path, workspace: Path, style: str = "openai", **tools: Any) -> Agent:
    return Agent(env_for(fake, tmp, style, CLAWPEN_TOOLS=tools_env(**tools), CLAWPEN_WORKSPACE=str(workspace)))


@pytest.fixture
def started() -> Iterator[list[Agent]]:
    agents: list[Agent] = []
    yield agents
    for a in agents:
        a.server.stop()


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("type") == kind]


@pytest.mark.parametrize("style", STYLES)
def test_write_then_read_back_and_session_keeps_the_exchange(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent], style: str
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace, style)
    started.append(agent)
    fake_model.push(
        calls(("write_file", {"path": "notes/hello.txt", "content": "hi there\n"})),
        calls(("read_file", {"path": "notes/hello.txt"})),
        Script(reply="The file says hi there."),
    )
    events = agent.stream("write and read", session="s1")
    assert (workspace / "notes/hello.txt").read_text() == "hi there\n"
    assert [e["name"] for e in of_type(events, "tool_call")] == ["write_file", "read_file"]
    results = of_type(events, "tool_result")
    assert results[0]["output"] == "wrote 9 bytes to notes/hello.txt" and not results[0]["is_error"]
    assert results[1]["output"] == "hi there\n"
    assert text_of(events) == "The file says hi there."
    assert events[-1] == {"done": True}
    # The model got the tools offered and each result fed back under its call's id.
    first, second, third = fake_model.requests[-3:]
    assert sorted(tool_names(first.body)) == ["list_files", "read_file", "run_command", "write_file"]
    assert [r["content"] for r in tool_results(third.body)] == ["wrote 9 bytes to notes/hello.txt", "hi there\n"]
    # The whole exchange is in the session, and the next turn sends it again.
    stored = SessionStore(tmp_path).read("s1")
    assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert stored[1]["tool_calls"][0]["name"] == "write_file"
    fake_model.push(Script(reply="ok"))
    agent.stream("and now?", session="s1")
    assert len(tool_results(fake_model.requests[-1].body)) == 2


@pytest.mark.parametrize("style", STYLES)
def test_run_command_output_and_exit_code(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent], style: str
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace, style)
    started.append(agent)
    fake_model.push(calls(("run_command", {"command": "echo out; echo err >&2; pwd; exit 3"})), Script(reply="done"))
    events = agent.stream("run it")
    (result,) = of_type(events, "tool_result")
    assert result["is_error"] is True
    assert result["output"].splitlines() == ["exit code: 3", "out", "err", str(workspace.resolve())]


def test_run_command_output_is_capped_with_a_note(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent]
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace, outputLimitBytes=1000)
    started.append(agent)
    fake_model.push(calls(("run_command", {"command": "yes abcdefghi | head -c 5000"})), Script(reply="done"))
    (result,) = of_type(agent.stream("big"), "tool_result")
    assert "[output cut: 4000 more bytes not shown; limit 1000 bytes]" in result["output"]
    assert result["output"].startswith("exit code: 0\n")


def test_run_command_timeout_kills_the_process_group(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent]
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace)
    started.append(agent)
    # A background grandchild in the same process group: the timeout must take it too.
    command = "sleep 300 & echo $! > child.pid; sleep 300"
    fake_model.push(calls(("run_command", {"command": command, "timeout_s": 1})), Script(reply="done"))
    (result,) = of_type(agent.stream("hang"), "tool_result")
    assert result["is_error"] and result["output"].startswith("timed out after 1s: killed the command")
    child = int((workspace / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, the killed shell, is gone; init reaps it eventually).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (("read_file", {"path": "../outside.txt"}), "resolves outside the workspace (through '..')"),
        (("read_file", {"path": "/etc/passwd"}), "is outside the workspace"),
        (("read_file", {"path": "link/outside.txt"}), "resolves outside the workspace (through a symlink)"),
        (("write_file", {"path": "link/new.txt", "content": "x"}), "through a symlink"),
        (("list_files", {"path": "link"}), "through a symlink"),
        (("read_file", {"path": "secret-link"}), "through a symlink"),
    ],
)
def test_escapes_are_refused(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent], call: Any, needle: str
) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (workspace / "link").symlink_to(tmp_path)
    (workspace / "secret-link").symlink_to(tmp_path / "outside.txt")
    agent = make_agent(fake_model, tmp_path, workspace)
    started.append(agent)
    fake_model.push(calls(call), Script(reply="done"))
    (result,) = of_type(agent.stream("escape"), "tool_result")
    assert result["is_error"] and needle in result["output"], result
    assert "secret" not in result["output"].replace("secret-link", "")
    assert not (tmp_path / "new.txt").exists()


@pytest.mark.parametrize("style", STYLES)
def test_max_steps_stops_a_looping_model(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent], style: str
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace, style, maxSteps=3)
    started.append(agent)
    fake_model.default = calls(("list_files", {}))
    events = agent.stream("loop forever", session="loop")
    assert len(of_type(events, "tool_result")) == 3
    assert len(fake_model.requests) == 4
    assert "[stopped: the model asked for more tools after 3 steps (spec.tools.maxSteps=3)" in text_of(events)
    assert events[-1] == {"done": True}
    assert SessionStore(tmp_path).read("loop")[-1]["content"].startswith("[stopped:")


def test_unknown_tool_and_bad_arguments_are_error_results(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent]
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace, builtin=["read_file"])
    started.append(agent)
    fake_model.push(calls(("run_command", {"command": "id"}), ("read_file", "{not json")), Script(reply="ok"))
    results = of_type(agent.stream("try"), "tool_result")
    assert "no tool named 'run_command' (available: read_file)" in results[0]["output"]
    assert "not a JSON object" in results[1]["output"]
    assert tool_names(fake_model.requests[0].body) == ["read_file"]


def test_without_tools_no_tools_are_offered(fake_model: FakeModelServer, tmp_path: Path, started: list[Agent]) -> None:
    agent = Agent(env_for(fake_model, tmp_path))
    started.append(agent)
    agent.stream("hi")
    assert "tools" not in fake_model.requests[-1].body


def _answer_when_asked(agent: Agent, approve: bool | None, seen: list[dict[str, Any]]) -> threading.Thread:
    """Stream a turn in a thread, answering the approval request over HTTP as a client would."""

    def run() -> None:
        payload = {"messages": [{"role": "user", "content": "please"}], "stream": True}
        url = f"{agent.url}/v1/chat/completions"
        with httpx.stream("POST", url, json=payload, headers=AUTH, timeout=20) as resp:
            for line in resp.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                seen.append(event)
                if event.get("type") == "approval_request" and approve is not None:
                    answer = {"id": event["id"], "approve": approve}
                    sent = httpx.post(f"{agent.url}/v1/chat/approvals", json=answer, headers=AUTH)
                    assert sent.status_code == 200

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("approve", "expect"),
    [
        (True, "exit code: 0"),
        (False, "denied: the user refused"),
        (None, "denied: nobody approved run_command within 1s"),
    ],
)
def test_approval(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent], approve: Any, expect: str
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace, approval={"run_command": "always"}, approvalTimeoutSeconds=1)
    started.append(agent)
    fake_model.push(calls(("list_files", {}), ("run_command", {"command": "touch ran"})), Script(reply="ok"))
    seen: list[dict[str, Any]] = []
    _answer_when_asked(agent, approve, seen).join(30)
    requests = of_type(seen, "approval_request")
    assert [r["name"] for r in requests] == ["run_command"]  # list_files needs none
    assert requests[0]["arguments"] == {"command": "touch ran"}
    result = of_type(seen, "tool_result")[-1]
    assert result["output"].startswith(expect)
    assert (workspace / "ran").exists() == (approve is True)
    # An answer for a call that no longer waits is refused, not kept for later.
    late = httpx.post(f"{agent.url}/v1/chat/approvals", json={"id": requests[0]["id"], "approve": True}, headers=AUTH)
    assert late.status_code == 404
    # Like everything but /healthz, approving needs the agent's token.
    assert httpx.post(f"{agent.url}/v1/chat/approvals", json={"id": "x", "approve": True}).status_code == 401


def test_non_streamed_turn_runs_tools_and_denies_approvals(
    fake_model: FakeModelServer, tmp_path: Path, workspace: Path, started: list[Agent]
) -> None:
    agent = make_agent(fake_model, tmp_path, workspace, approval={"run_command": "always"})
    started.append(agent)
    fake_model.push(
        calls(("write_file", {"path": "a.txt", "content": "A"}), ("run_command", {"command": "touch b"})),
        Script(reply="finished"),
    )
    resp = agent.chat("go", session="ns")
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "finished"
    assert (workspace / "a.txt").exists() and not (workspace / "b").exists()
    denied = tool_results(fake_model.requests[-1].body)[1]
    assert "needs approval, and this request is not streamed" in denied["content"]
