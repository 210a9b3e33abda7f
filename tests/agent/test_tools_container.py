"""Tools in the real agent image: a container as the controller runs it (read-only root, uid 10001,
/data and /workspace named volumes, /run/secrets), a scripted fake model on the host, and MCP
servers nobody here wrote: `mcp-server-time` from PyPI (stdio, installed into a test image built on
the agent image) and a streamable-HTTP server made with the `mcp` SDK's own FastMCP class.

Only Docker objects this module creates are touched (a per-run label; removed by the finalizers).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.model_server import FakeModelServer, Script, calls, tool_names, tool_results
from tests.fakes.server_thread import ServerThread

pytestmark = pytest.mark.docker

RUN_LABEL = "clawpen.test/tools-run"
TIME_SERVER = "mcp-server-time==2026.1.26"  # the last release on the mcp 1.x SDK the image carries
TOKEN = "tools-test-agent-token"
BUILTINS = ["read_file", "write_file", "list_files", "run_command"]


@pytest.fixture(scope="module")
def mcp_image(docker_client: Any, agent_image: str) -> str:
    """The agent image plus mcp-server-time (and its tz data), installed offline from host wheels."""
    base_id = docker_client.images.get(agent_image).id
    tag = f"clawpen/agent-mcptest:{hashlib.sha256((base_id + TIME_SERVER).encode()).hexdigest()[:12]}"
    try:
        docker_client.images.get(tag)
        return tag
    except Exception:  # noqa: BLE001 - not built yet
        pass
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "extra"
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
        subprocess.run([*pip, "--target", str(site), "--no-deps", TIME_SERVER, "tzlocal", "tzdata"], check=True)
        (Path(tmp) / "Dockerfile").write_text(f"FROM {agent_image}\nCOPY extra/ /opt/clawpen/extra/\n")
        docker_client.images.build(path=tmp, tag=tag, network_mode="none", rm=True, labels={RUN_LABEL: "image"})
    for old in docker_client.images.list(filters={"label": f"{RUN_LABEL}=image"}):  # earlier agent images'
        if tag not in old.tags:
            with contextlib.suppress(Exception):
                docker_client.images.remove(old.id)
    return tag


@pytest.fixture
def run_id(docker_client: Any) -> Iterator[str]:
    run = uuid.uuid4().hex[:10]
    yield run
    for c in docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run}"}):
        c.remove(force=True)
    for v in docker_client.volumes.list(filters={"label": f"{RUN_LABEL}={run}"}):
        v.remove(force=True)
    for n in docker_client.networks.list(filters={"label": f"{RUN_LABEL}={run}"}):
        n.remove()


class Box:
    """One agent container; `replace()` makes a new one on the same volumes (as a spec change does)."""

    def __init__(
        self, client: Any, image: str, run: str, env: dict[str, str], secrets: dict[str, str] | None = None
    ):
        self.client, self.image, self.run, self.env, self.n = client, image, run, env, 0
        self.volumes = {
            client.volumes.create(f"tools-{run}-{what}", labels={RUN_LABEL: run}).name: {
                "bind": f"/{what}",
                "mode": "rw",
            }
            for what in ("data", "workspace")
        }
        self.secrets = Path(tempfile.mkdtemp(prefix="tools-secrets-"))
        (self.secrets / "API_KEY").write_text("top-secret-value")
        (self.secrets / "API_KEY").chmod(0o444)
        (self.secrets / "clawpen-agent-token").write_text(TOKEN)
        (self.secrets / "clawpen-agent-token").chmod(0o444)
        for name, value in (secrets or {}).items():
            (self.secrets / name).write_text(value + "\n")
            (self.secrets / name).chmod(0o444)
        self.secrets.chmod(0o755)
        self.volumes[str(self.secrets)] = {"bind": "/run/secrets", "mode": "ro"}
        # Its own network, as the runtime gives every agent; the host is that network's gateway.
        network = client.networks.create(f"tools-{run}", driver="bridge", labels={RUN_LABEL: run})
        network.reload()
        self.network = network.name
        self.gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        self.container: Any = None
        self.url = ""
        self.start()

    def start(self) -> None:
        self.n += 1
        self.container = self.client.containers.create(
            self.image,
            name=f"tools-{self.run}-{self.n}",
            labels={RUN_LABEL: self.run},
            user="10001:10001",
            read_only=True,
            tmpfs={"/tmp": "size=16m"},
            environment=self.env,
            volumes=self.volumes,
            network=self.network,
            extra_hosts={"host.docker.internal": self.gateway},
            ports={"8080/tcp": ("127.0.0.1", None)},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=256,
        )
        self.container.start()
        self.url = self._wait_ready()

    def replace(self) -> None:
        self.container.remove(force=True)
        self.start()

    def _wait_ready(self, timeout: float = 120.0) -> str:
        since = time.monotonic()
        while True:
            self.container.reload()
            ports = (self.container.attrs["NetworkSettings"]["Ports"] or {}).get("8080/tcp")
            if ports:
                url = f"http://127.0.0.1:{ports[0]['HostPort']}"
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        return url
                except httpx.TransportError:
                    pass
            if self.container.status == "exited" or time.monotonic() - since > timeout:
                raise AssertionError(f"agent not ready; logs:\n{self.container.logs().decode()[-3000:]}")
            time.sleep(0.05)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()  # type: ignore[no-any-return]

    def turn(self, content: str, session: str = "main") -> list[dict[str, Any]]:
        payload = {"messages": [{"role": "user", "content": content}], "stream": True, "session": session}
        events = []
        url = f"{self.url}/v1/chat/completions"
        with httpx.stream("POST", url, json=payload, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    events.append(json.loads(line[6:]))
        return events


def agent_env(fake: FakeModelServer, style: str = "openai", **tools: Any) -> dict[str, str]:
    return {
        "CLAWPEN_AGENT_NAME": "boxed",
        "CLAWPEN_PROVIDER": "fake",
        "CLAWPEN_API_STYLE": style,
        "CLAWPEN_BASE_URL": fake.container_url(style),
        "CLAWPEN_MODEL": "fake-1",
        "CLAWPEN_TOOLS": json.dumps({"builtin": BUILTINS, **tools}),
    }


def results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("type") == "tool_result"]


@pytest.mark.parametrize("style", ["openai", "anthropic"])
def test_workspace_tools_in_the_container_and_the_session_survives_replacement(
    docker_client: Any, agent_image: str, run_id: str, fake_model: FakeModelServer, style: str
) -> None:
    box = Box(docker_client, agent_image, run_id, agent_env(fake_model, style))
    fake_model.push(
        calls(("write_file", {"path": "src/app.txt", "content": "v1\n"})),
        calls(("run_command", {"command": "cat src/app.txt; id -u; ls /bin/sh >/dev/null && echo shell-ok; exit 4"})),
        calls(("read_file", {"path": "/run/secrets/API_KEY"}), ("read_file", {"path": "../run/secrets/API_KEY"})),
        Script(reply="done"),
    )
    events = box.turn("build it", session="work")
    out = results(events)
    assert out[0]["output"] == "wrote 3 bytes to src/app.txt"
    assert out[1]["output"].splitlines() == ["exit code: 4", "v1", "10001", "shell-ok"] and out[1]["is_error"]
    assert all(r["is_error"] and "outside the workspace" in r["output"] for r in out[2:])
    assert "top-secret-value" not in json.dumps(events)
    # The file is on the /workspace volume, not in the container's (read-only) layer.
    box.replace()
    fake_model.push(calls(("read_file", {"path": "src/app.txt"})), Script(reply="still there"))
    again = results(box.turn("is it still there?", session="work"))
    assert again[0]["output"] == "v1\n"
    # The new container's first model request carried the whole earlier tool exchange from /data.
    first_after = fake_model.requests[-2].body
    earlier = tool_results(first_after)
    assert len(earlier) == 4 and earlier[0]["content"] == "wrote 3 bytes to src/app.txt"


def test_run_command_timeout_kills_the_group_in_the_container(
    docker_client: Any, agent_image: str, run_id: str, fake_model: FakeModelServer
) -> None:
    box = Box(docker_client, agent_image, run_id, agent_env(fake_model))
    fake_model.push(
        calls(("run_command", {"command": "sleep 120 & echo $! > bg.pid; sleep 120", "timeout_s": 1})),
        calls(("run_command", {"command": "kill -0 $(cat bg.pid) 2>/dev/null && echo alive || echo gone"})),
        Script(reply="ok"),
    )
    first, second = results(box.turn("hang"))
    assert first["is_error"] and first["output"].startswith("timed out after 1s")
    assert second["output"].splitlines()[1] == "gone"


def test_mcp_servers_stdio_and_http_and_a_dead_one(
    docker_client: Any, mcp_image: str, run_id: str, fake_model: FakeModelServer
) -> None:
    from mcp.server.fastmcp import FastMCP

    calc = FastMCP("calc", host="0.0.0.0", stateless_http=True)

    @calc.tool()
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return f"sum={a + b}"

    with ServerThread(calc.streamable_http_app(), host="0.0.0.0") as calc_url:
        port = calc_url.rsplit(":", 1)[1]
        servers = [
            {
                "name": "time",
                "command": "python3",
                "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
                "env": {"PYTHONPATH": "/opt/clawpen/extra:/opt/clawpen/site"},
            },
            {"name": "calc", "url": f"http://host.docker.internal:{port}/mcp"},
            {"name": "broken", "command": "python3", "args": ["-m", "no_such_mcp_server"]},
        ]
        box = Box(docker_client, mcp_image, run_id, agent_env(fake_model, builtin=[], mcpServers=servers))
        health = box.health()
        assert health["status"] == "ok"
        assert health["tools"]["mcp"]["time"]["state"] == "ok"
        assert health["tools"]["mcp"]["calc"]["tools"] == ["calc__add"]
        assert health["tools"]["mcp"]["broken"]["state"] == "failed"
        assert health["tools_degraded"].startswith("broken: ")
        fake_model.push(
            calls(("time__get_current_time", {"timezone": "UTC"}), ("calc__add", {"a": 2, "b": 40})),
            Script(reply="It is time."),
        )
        events = box.turn("what time is it, and 2+40?")
    offered = tool_names(fake_model.requests[-2].body)
    assert "time__get_current_time" in offered and "calc__add" in offered
    assert not any(name.startswith("broken__") for name in offered)
    time_result, calc_result = results(events)
    assert not time_result["is_error"] and json.loads(time_result["output"])["timezone"] == "UTC"
    assert calc_result["output"] == "sum=42"


STDIO_KEY_SERVER = """
import hashlib, os
from mcp.server.fastmcp import FastMCP
app = FastMCP("keyed")
@app.tool()
def key_digest() -> str:
    \"\"\"The sha256 of the key this server was given.\"\"\"
    return hashlib.sha256(os.environ.get("SEARCH_API_KEY", "").encode()).hexdigest()
app.run()
"""


def test_mcp_credentials_come_from_secret_files_never_the_environment(
    docker_client: Any, mcp_image: str, run_id: str, fake_model: FakeModelServer
) -> None:
    """secretHeaders reach an HTTP server that demands them; secretEnv reaches a stdio server; a server whose
    secret file is absent is reported failed; and no credential shows in `docker inspect`."""
    import hashlib

    from mcp.server.fastmcp import FastMCP
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import PlainTextResponse

    http_token, stdio_key = "mcp-bearer-" + uuid.uuid4().hex, "search-key-" + uuid.uuid4().hex
    private = FastMCP("private", host="0.0.0.0", stateless_http=True)

    @private.tool()
    def ping() -> str:
        """Answer pong."""
        return "pong"

    app = private.streamable_http_app()

    async def demand_bearer(request: Any, call_next: Any) -> Any:
        if request.headers.get("authorization") != f"Bearer {http_token}":
            return PlainTextResponse("no", status_code=401)
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=demand_bearer)
    with ServerThread(app, host="0.0.0.0") as private_url:
        url = f"http://host.docker.internal:{private_url.rsplit(':', 1)[1]}/mcp"
        bearer = {"Authorization": {"secret": "MCP_TOKEN", "prefix": "Bearer "}}
        servers = [
            {"name": "private", "url": url, "secretHeaders": bearer},
            {"name": "nokey", "url": url, "secretHeaders": {"Authorization": {"secret": "ABSENT"}}},
            {
                "name": "keyed",
                "command": "python3",
                "args": ["-c", STDIO_KEY_SERVER],
                "env": {"PYTHONPATH": "/opt/clawpen/extra:/opt/clawpen/site"},
                "secretEnv": {"SEARCH_API_KEY": {"secret": "SEARCH_KEY"}},
            },
        ]
        box = Box(
            docker_client,
            mcp_image,
            run_id,
            agent_env(fake_model, builtin=[], mcpServers=servers),
            secrets={"MCP_TOKEN": http_token, "SEARCH_KEY": stdio_key},
        )
        health = box.health()
        assert health["tools"]["mcp"]["private"]["tools"] == ["private__ping"]
        assert health["tools"]["mcp"]["keyed"]["tools"] == ["keyed__key_digest"]
        assert health["tools"]["mcp"]["nokey"]["state"] == "failed"
        assert "ABSENT" in health["tools"]["mcp"]["nokey"]["error"]
        fake_model.push(calls(("private__ping", {}), ("keyed__key_digest", {})), Script(reply="ok"))
        pong, digest = results(box.turn("ping both"))
    assert pong["output"] == "pong"
    assert digest["output"] == hashlib.sha256(stdio_key.encode()).hexdigest()
    box.container.reload()
    inspected = json.dumps(box.container.attrs)
    assert http_token not in inspected and stdio_key not in inspected
