"""Chat end to end, as issue 4 describes it: an agent from a manifest, run by the controller in a real
container, reached through the gateway's WebSocket, talking to the fake model on the host.

Checks: tokens back in order; `clawpen chat` joins the same session; the container replaced by a
memory change continues the session (its /data volume is kept); a provider 401 becomes a clear error
frame; a client that goes away cancels the model call all the way down.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect

from controller.cli import main as cli_main
from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Agent, parse_resource
from tests.api.conftest import login, start_gateway
from tests.fakes.model_server import FakeModelServer, Script, echo_count

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()  # 0.0.0.0: containers reach it as host.docker.internal
    yield server
    server.stop()


def manifest(model: FakeModelServer, memory_mb: int) -> Agent:
    spec = {
        "provider": "ollama",  # OpenAI-style and keyless; baseURL points it at the fake model
        "baseURL": model.container_url(),
        "model": "fake-1",
        "systemPrompt": "You are {{name}}.",
        "resources": {"memoryMB": memory_mb},
    }
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "talk"}, "spec": spec})


def chat(ws_url: str, token: str, messages: list[str], session: str = "main") -> list[list[dict[str, Any]]]:
    """Send each message in turn over one socket; the frames of each reply (blocking: run in a thread)."""
    replies = []
    with connect(f"{ws_url}/api/agents/talk/chat?token={token}") as ws:
        for content in messages:
            ws.send(json.dumps({"content": content, "session": session}))
            frames = []
            while not (frames and (frames[-1].get("done") or frames[-1].get("error"))):
                frames.append(json.loads(ws.recv(timeout=60)))
            replies.append(frames)
    return replies


def hang_up_after_first_delta(ws_url: str, token: str) -> str:
    with connect(f"{ws_url}/api/agents/talk/chat?token={token}") as ws:
        ws.send(json.dumps({"content": "a long story please"}))
        return str(json.loads(ws.recv(timeout=60))["content"])


async def test_chat_through_gateway_to_a_container(
    plane: Any, model: FakeModelServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model.reset()
    await apply_resource(plane.store, manifest(model, 256))
    await plane.start_controller()
    first = await plane.wait_running("talk")
    gateway = start_gateway(plane.settings.home)
    try:
        token = login(gateway.url)["access_token"]

        model.push(Script(reply="tokens come back in order"))
        model.default = Script(reply=echo_count)
        (ordered, remember) = await asyncio.to_thread(chat, gateway.ws_url, token, ["hello", "remember 5"])
        assert [f["content"] for f in ordered if f.get("delta")] == ["tokens ", "come ", "back ", "in ", "order"]
        assert ordered[-1] == {**ordered[-1], "done": True, "content": "tokens come back in order"}
        assert remember[-1]["content"] == "messages=4 system=1 last=remember 5"
        assert model.requests[0].messages[0] == {"role": "system", "content": "You are talk."}

        # `clawpen chat` finds the container's endpoint in the status and joins the same session.
        monkeypatch.setenv("CLAWPEN_HOME", str(plane.settings.home))
        capsys.readouterr()
        assert await asyncio.to_thread(cli_main, ["chat", "talk", "-m", "from the terminal"]) == 0
        assert capsys.readouterr().out == "messages=6 system=1 last=from the terminal\n"

        # A memory change replaces the container; /data (the sessions) stays.
        await apply_resource(plane.store, manifest(model, 320))
        await plane.wait_for(
            "talk",
            lambda a: bool(a.status and a.status.container_id and a.status.container_id != first.status.container_id),
            timeout=60,
            what="a replacement container",
        )
        await plane.wait_running("talk")
        (after,) = await asyncio.to_thread(chat, gateway.ws_url, token, ["what number?"])
        assert after[-1]["content"] == "messages=8 system=1 last=what number?"
        assert {"role": "user", "content": "remember 5"} in model.requests[-1].messages

        model.push(Script(status=401, error_message="Incorrect API key"))
        (failed,) = await asyncio.to_thread(chat, gateway.ws_url, token, ["hi"])
        assert failed[-1]["role"] == "system"
        assert "Ollama (local): HTTP 401 unauthorized" in failed[-1]["content"]

        model.reset()
        model.push(Script(reply=" ".join(f"w{i}" for i in range(300)), chunk_delay=0.05))
        assert await asyncio.to_thread(hang_up_after_first_delta, gateway.ws_url, token) == "w0 "
        assert await asyncio.to_thread(model.wait_for, lambda: bool(model.requests and model.requests[0].disconnected))
        assert not model.requests[0].completed
    finally:
        gateway.stop()
        await plane.stop_controller()
        for observed in await plane.runtime.list_owned():  # containers first: the network is in use
            await plane.runtime.remove(observed.key, volumes=True)
        await plane.runtime.remove_network()
