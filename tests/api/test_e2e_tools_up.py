"""End to end with tools: `clawpen up` (controller + gateway in one process) on the real Docker engine
and the real agent image. An Agent applied with `clawpen apply -f` (template coding-assistant, so the
four workspace tools by default; run_command needs approval; one MCP server that cannot answer) runs,
shows ToolsDegraded on its status, and a chat over the gateway's WebSocket — the scripted model
writing a file and running a command the client approves — leaves the files in its /workspace volume.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.api.test_e2e_up import PASSWORD, ROOT, _containers, _wait
from tests.fakes.model_server import FakeModelServer, Script, calls
from tests.support.clawpen_up import clawpen_up

pytestmark = pytest.mark.docker

MANIFEST = """
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {{name: builder}}
spec:
  template: coding-assistant
  provider: ollama
  model: fake-1
  baseURL: {base_url}
  resources: {{memoryMB: 256}}
  tools:
    approval: {{run_command: always}}
    mcpServers:
      - {{name: gone, url: "http://127.0.0.1:9/mcp"}}
"""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, agent_image: str) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("tools-up-home")
    with clawpen_up(docker_client, agent_image, home, password=PASSWORD) as run:
        yield {"url": run.url, "instance": run.instance, "env": run.env, "home": home}


def test_chat_makes_the_agent_create_files_in_its_workspace_volume(
    up: dict[str, Any], docker_client: Any, agent_image: str, tmp_path: Path
) -> None:
    fake = FakeModelServer().start()
    try:
        manifest = tmp_path / "builder.yaml"
        manifest.write_text(MANIFEST.format(base_url=fake.container_url()))
        applied = subprocess.run(
            [sys.executable, "-m", "controller.cli", "apply", "-f", str(manifest)],
            cwd=ROOT,
            env=up["env"],
            capture_output=True,
            text=True,
        )
        assert applied.returncode == 0, applied.stderr
        url = up["url"]
        token = httpx.post(f"{url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

        def degraded() -> dict[str, Any] | None:
            body = api.get("/api/agents/builder").json()
            tools = next((c for c in body.get("conditions") or [] if c["type"] == "ToolsDegraded"), None)
            return tools if body["status"] == "running" and tools else None

        condition = _wait(degraded, "running with ToolsDegraded", timeout=120)
        assert condition["status"] == "True" and condition["reason"] == "MCPServerFailed"
        assert condition["message"].startswith("gone: ")

        fake.push(
            calls(("write_file", {"path": "hello/world.txt", "content": "made through the gateway\n"})),
            calls(("run_command", {"command": "ls hello > listing.txt"})),
            Script(reply="Created hello/world.txt."),
        )
        frames = []
        ws_url = url.replace("http://", "ws://") + f"/api/agents/builder/chat?token={token}"
        with connect(ws_url) as ws:
            ws.send(json.dumps({"content": "create the file", "session": "e2e"}))
            while not (frames and (frames[-1].get("done") or frames[-1].get("error"))):
                frame = json.loads(ws.recv(timeout=60))
                frames.append(frame)
                if frame.get("type") == "approval_request":
                    ws.send(json.dumps({"type": "approval", "id": frame["id"], "approve": True}))
        assert frames[-1].get("done") is True and frames[-1]["content"] == "Created hello/world.txt.", frames
        assert [f["name"] for f in frames if f.get("type") == "tool_call"] == ["write_file", "run_command"]
        assert [f["output"].splitlines()[0] for f in frames if f.get("type") == "tool_result"] == [
            "wrote 25 bytes to hello/world.txt",
            "exit code: 0",
        ]

        # The files are in the agent's /workspace volume (read by a throwaway container, not the agent).
        (container,) = _containers(docker_client, up["instance"])
        volume = next(m["Name"] for m in container.attrs["Mounts"] if m["Destination"] == "/workspace")
        out = docker_client.containers.run(
            agent_image,
            entrypoint=["sh", "-c", "cat /w/hello/world.txt /w/listing.txt"],
            volumes={volume: {"bind": "/w", "mode": "ro"}},
            remove=True,
            network_mode="none",
        )
        assert out.decode() == "made through the gateway\nworld.txt\n"
    finally:
        fake.stop()
