"""`python -m agent`, the image's entry point, as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.model_server import FakeModelServer, Script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_entry_point_serves_chat_and_logs_no_secret(fake_model: FakeModelServer, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "CLAWPEN_AGENT_NAME": "proc",
        "CLAWPEN_API_STYLE": "openai",
        "CLAWPEN_BASE_URL": fake_model.url,
        "CLAWPEN_MODEL": "m",
        "CLAWPEN_API_KEY_NAME": "FAKE_KEY",
        "FAKE_KEY": "sk-do-not-log-me",
        "CLAWPEN_DATA_DIR": str(tmp_path),
        "CLAWPEN_AGENT_PORT": str(port),
        "CLAWPEN_SECRETS_DIR": str(tmp_path / "secrets"),
    }
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "clawpen-agent-token").write_text("proc-token")
    fake_model.push(Script(reply="pong"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "agent did not become ready"
            time.sleep(0.05)
        body = {"messages": [{"role": "user", "content": "ping"}], "session": "p"}
        auth = {"authorization": "Bearer proc-token"}
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=auth, timeout=10)
        assert resp.json()["choices"][0]["message"]["content"] == "pong"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it stopped.
    assert proc.returncode in (0, -15), output
    assert "Finished server process" in output
    assert "sk-do-not-log-me" not in output
    assert (tmp_path / "sessions" / "p.jsonl").exists()


def test_bad_setting_exits_with_one_line() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "CLAWPEN_REQUEST_TIMEOUT": "soon",
    }
    proc = subprocess.run([sys.executable, "-m", "agent"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "agent: bad configuration: CLAWPEN_REQUEST_TIMEOUT='soon' is not a number"
