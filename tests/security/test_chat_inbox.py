"""Hole 7: a chat client that sends faster than replies stream must not grow the gateway's memory.

Frames sent while a reply streams wait in the session's inbox. It used to be unbounded (160 → 901
MiB in 7 s); now more than 16 waiting frames close the socket with 1008 and a frame saying why, and a
frame bigger than any valid chat frame closes it with 1009.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from controller.resources import Agent, AgentStatus, Phase
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread
from tests.api.test_ws import ChatAgent

FLOOD_FRAMES = 150
FRAME_CHARS = 600_000  # each flood frame is valid-sized JSON text (~0.6 MB)


@pytest.fixture(scope="module")
def slow_agent() -> Iterator[ServerThread]:
    server = ServerThread(ChatAgent().app).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chat_gateway(
    tmp_path_factory: pytest.TempPathFactory, slow_agent: ServerThread
) -> Iterator[tuple[ServerThread, str]]:
    server = start_gateway(tmp_path_factory.mktemp("home"))
    token = login(server.url)["access_token"]
    import httpx

    answer = httpx.post(
        f"{server.url}/api/agents", json={"name": "talker"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.text
    server.call(
        server.app.state.deps.store.update_status(
            Agent, "talker", AgentStatus(phase=Phase.RUNNING, endpoint=slow_agent.url)
        )
    )
    yield server, token
    server.stop()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def frames_until_close(ws: ClientConnection) -> list[dict[str, Any]]:
    frames = []
    try:
        while True:
            frames.append(json.loads(ws.recv(timeout=30)))
    except ConnectionClosed:
        return frames


def test_flooding_a_streaming_chat_is_closed_1008_and_memory_stays_flat(chat_gateway: tuple[ServerThread, str]) -> None:
    server, token = chat_gateway
    before = rss_mb()
    big = json.dumps({"content": "x" * FRAME_CHARS})
    with connect(f"{server.ws_url}/api/agents/talker/chat?token={token}", max_size=None) as ws:
        ws.send(json.dumps({"content": "slow"}))  # the agent streams "thinking" then waits 60 s
        assert json.loads(ws.recv(timeout=10))["content"] == "thinking"
        sent = 0
        try:
            for _ in range(FLOOD_FRAMES):
                ws.send(big)
                sent += 1
        except ConnectionClosed:
            pass
        frames = frames_until_close(ws)
        assert ws.close_code == 1008, (ws.close_code, frames[-1:])
    assert any(f.get("error") == "too many frames" for f in frames), frames
    growth = rss_mb() - before
    assert growth < 60, f"the gateway grew {growth:.0f} MiB after {sent} frames of {FRAME_CHARS} characters"


def test_a_frame_bigger_than_any_chat_frame_is_closed_1009(chat_gateway: tuple[ServerThread, str]) -> None:
    server, token = chat_gateway
    with connect(f"{server.ws_url}/api/agents/talker/chat?token={token}", max_size=None) as ws:
        ws.send("y" * 1_200_000)
        frames = frames_until_close(ws)
        assert ws.close_code == 1009
    assert frames and frames[-1]["error"] == "frame too big"


def test_a_few_queued_frames_are_still_answered_in_order(chat_gateway: tuple[ServerThread, str]) -> None:
    server, token = chat_gateway
    with connect(f"{server.ws_url}/api/agents/talker/chat?token={token}") as ws:
        for _ in range(3):
            ws.send(json.dumps({"content": "hello"}))
        done = 0
        while done < 3:
            frame = json.loads(ws.recv(timeout=10))
            assert not frame.get("error"), frame
            done += bool(frame.get("done"))
