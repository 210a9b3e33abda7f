"""Suspend and wake (spec.idle) against the real Docker engine.

An agent with a short suspendAfter is paused once nobody chats with it (phase Suspended, container
`paused`), the first WebSocket message wakes it and is answered in the same session, and a wake that
races a delete ends in a clear error frame or close, never a hang, with no container left behind.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from controller.commands.resources import apply_resource
from controller.idle import Activity
from controller.resources import API_VERSION, Agent, Phase, parse_resource
from controller.wiring import open_runtime
from tests.api.conftest import login, start_gateway
from tests.fakes.model_server import FakeModelServer, Script, echo_count

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


def model_url(model: FakeModelServer) -> str:
    """host.docker.internal (host-gateway = docker0) where docker0 exists; else the host's own address,
    which containers on our user-defined network reach through its gateway."""
    if Path("/sys/class/net/docker0").exists():
        return model.container_url()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.254", 9))  # no packet is sent: this only picks the outgoing address
        return f"http://{probe.getsockname()[0]}:{model.port}/v1"


def gateway_for(plane: Any) -> Any:
    """The gateway with its own Docker runtime of the same instance (it runs on its own event loop)."""
    settings = plane.settings
    return start_gateway(settings.home, runtime=open_runtime(settings), instance=settings.instance)


def manifest(model: FakeModelServer, name: str, suspend_after: str = "2s") -> Agent:
    spec = {
        "provider": "ollama",
        "baseURL": model_url(model),
        "model": "fake-1",
        "idle": {"suspendAfter": suspend_after},
    }
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": spec})


def chat(ws_url: str, token: str, name: str, messages: list[str]) -> list[list[dict[str, Any]]]:
    replies = []
    with connect(f"{ws_url}/api/agents/{name}/chat?token={token}") as ws:
        for content in messages:
            ws.send(json.dumps({"content": content, "session": "main"}))
            frames: list[dict[str, Any]] = []
            while not (frames and (frames[-1].get("done") or frames[-1].get("error"))):
                frames.append(json.loads(ws.recv(timeout=30)))
            replies.append(frames)
    return replies


async def test_suspend_after_quiet_period_and_wake_on_chat(plane: Any, model: FakeModelServer) -> None:
    model.reset()
    model.default = Script(reply=echo_count)
    await apply_resource(plane.store, manifest(model, "sleepy", "3s"))
    await plane.start_controller()
    await plane.wait_running("sleepy")
    gateway = gateway_for(plane)
    try:
        token = login(gateway.url)["access_token"]
        (first,) = await asyncio.to_thread(chat, gateway.ws_url, token, "sleepy", ["remember 7"])
        assert first[-1]["content"] == "messages=1 system=0 last=remember 7"
        assert Activity(plane.settings.home).last("default/sleepy") is not None

        suspended = await plane.wait_for(
            "sleepy", lambda a: bool(a.status and a.status.phase == Phase.SUSPENDED), timeout=30, what="Suspended"
        )
        assert suspended.status.condition("Ready").reason == "Suspended"
        assert (await plane.runtime.observe("default/sleepy")).state == "paused"
        listed = httpx.get(f"{gateway.url}/api/agents", headers={"Authorization": f"Bearer {token}"})
        assert [a["status"] for a in listed.json()] == ["suspended"], listed.text

        # The first message wakes it and is answered; the session (history) survived the pause. The
        # controller is stopped first, so the gateway alone must wake it.
        await plane.stop_controller()
        (woken,) = await asyncio.to_thread(chat, gateway.ws_url, token, "sleepy", ["what number?"])
        assert woken[-1].get("done"), woken
        assert woken[-1]["content"] == "messages=3 system=0 last=what number?"
        assert (await plane.runtime.observe("default/sleepy")).state == "running"
        await plane.start_controller()
        await plane.wait_running("sleepy", timeout=30)
    finally:
        gateway.stop()


async def test_idle_removed_unpauses(plane: Any, model: FakeModelServer) -> None:
    await apply_resource(plane.store, manifest(model, "nap", "1s"))
    await plane.start_controller()
    await plane.wait_for("nap", lambda a: bool(a.status and a.status.phase == Phase.SUSPENDED), timeout=60)
    agent = await plane.store.get(Agent, "nap")
    agent.spec.idle = None
    await apply_resource(plane.store, agent)
    await plane.wait_running("nap", timeout=30)
    assert (await plane.runtime.observe("default/nap")).state == "running"


def chat_outcome(ws_url: str, token: str, name: str) -> str:
    try:
        with connect(f"{ws_url}/api/agents/{name}/chat?token={token}") as ws:
            ws.send(json.dumps({"content": "are you there?"}))
            while True:
                frame = json.loads(ws.recv(timeout=30))
                if frame.get("done"):
                    return "answered"
                if frame.get("error"):
                    return "error"
    except ConnectionClosed as closed:
        return f"closed {closed.rcvd.code if closed.rcvd else None}"


async def test_wake_racing_a_delete(plane: Any, model: FakeModelServer) -> None:
    model.reset()
    await apply_resource(plane.store, manifest(model, "gone", "1s"))
    await plane.start_controller()
    await plane.wait_for("gone", lambda a: bool(a.status and a.status.phase == Phase.SUSPENDED), timeout=60)
    gateway = gateway_for(plane)
    try:
        token = login(gateway.url)["access_token"]
        waking = asyncio.create_task(asyncio.to_thread(chat_outcome, gateway.ws_url, token, "gone"))
        await plane.store.delete(Agent, "gone")
        outcome = await asyncio.wait_for(waking, timeout=60)  # never a hang
        assert outcome in ("answered", "error", "closed 4404", "closed 4409"), outcome

        async def removed() -> bool:
            return not (await plane.runtime.observe("default/gone")).exists

        await plane.until(removed, timeout=30, what="the container removed")
    finally:
        gateway.stop()
