"""WebSocket chat relay against a small agent that speaks our chat contract, over real sockets.

The agent below is our own component's contract (OpenAI-style SSE on /v1/chat/completions), served
by uvicorn on 127.0.0.1; what it answers is chosen by the message, so each relay path is exercised:
a streamed reply, an error event, an HTTP error, a reply cut off, and a client that leaves mid-reply.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from controller.resources import Agent, AgentStatus, Phase
from tests.api.harness import ServerThread


class ChatAgent:
    """Records what it was asked and whether a stream was abandoned by its caller."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.cancelled = threading.Event()
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.complete, methods=["POST"])])

    @staticmethod
    def _event(data: Any) -> str:
        return f"data: {json.dumps(data)}\n\n"

    def _delta(self, text: str, finish: str | None = None) -> str:
        return self._event({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]})

    async def complete(self, request: Request) -> Response:
        payload = await request.json()
        self.requests.append(payload)
        content = payload["messages"][-1]["content"]
        if content == "http500":
            return JSONResponse({"error": {"message": "model server exploded"}}, status_code=500)

        async def stream() -> AsyncIterator[str]:
            if content == "fail":
                yield self._delta("partial ")
                yield self._event({"error": {"message": "provider openai answered 401: invalid API key"}})
                return
            if content == "slow":
                yield self._delta("thinking")
                try:
                    await asyncio.sleep(60)
                except asyncio.CancelledError:
                    self.cancelled.set()
                    raise
                return
            if content == "cut":
                yield self._delta("half a rep")
                return
            for i, piece in enumerate(["Hel", "lo ", "world"]):
                yield self._delta(piece, "stop" if i == 2 else None)
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def agent() -> Iterator[tuple[ChatAgent, ServerThread]]:
    chat_agent = ChatAgent()
    server = ServerThread(chat_agent.app).start()
    yield chat_agent, server
    server.stop()


@pytest.fixture(scope="module")
def running(client: httpx.Client, gateway: ServerThread, agent: tuple[ChatAgent, ServerThread]) -> str:
    """An agent whose status says Running at the chat agent's endpoint (as the controller would write)."""
    assert client.post("/api/agents", json={"name": "talker", "config": {"llm_model": "gpt-test"}}).status_code == 201
    status = AgentStatus(phase=Phase.RUNNING, endpoint=agent[1].url)
    gateway.call(gateway.app.state.deps.store.update_status(Agent, "talker", status))
    return "talker"


def _open(gateway: ServerThread, tokens: dict[str, Any], name: str) -> ClientConnection:
    return connect(f"{gateway.ws_url}/api/agents/{name}/chat?token={tokens['access_token']}")


def _until_final(ws: ClientConnection) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads(ws.recv(timeout=10))
        frames.append(frame)
        if frame.get("done") or frame.get("error"):
            return frames


def test_chat_streams_deltas_then_done(
    gateway: ServerThread, tokens: dict[str, Any], running: str, agent: tuple[ChatAgent, ServerThread]
) -> None:
    with _open(gateway, tokens, running) as ws:
        ws.send(json.dumps({"content": "hi there", "session": "s1"}))
        frames = _until_final(ws)
        ws.send(json.dumps({"content": "again"}))  # default session
        second = _until_final(ws)
    deltas = [f for f in frames if f.get("delta")]
    assert [f["content"] for f in deltas] == ["Hel", "lo ", "world"]
    assert all(f["role"] == "assistant" and f["timestamp"].endswith("Z") for f in frames)
    assert frames[-1]["done"] is True and frames[-1]["content"] == "Hello world"
    assert second[-1]["content"] == "Hello world"
    sent = agent[0].requests[-2:]
    assert sent[0] == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hi there"}],
        "stream": True,
        "session": "s1",
    }
    assert sent[1]["session"] == "main"


def test_upstream_error_event_becomes_error_frame(gateway: ServerThread, tokens: dict[str, Any], running: str) -> None:
    with _open(gateway, tokens, running) as ws:
        ws.send(json.dumps({"content": "fail"}))
        frames = _until_final(ws)
        assert frames[0]["content"] == "partial "
        error = frames[-1]
        assert error["role"] == "system" and "invalid API key" in error["error"] and "talker" in error["content"]
        ws.send(json.dumps({"content": "after the error"}))  # the session stays usable
        assert _until_final(ws)[-1]["done"] is True


def test_upstream_http_error_and_cut_stream(gateway: ServerThread, tokens: dict[str, Any], running: str) -> None:
    with _open(gateway, tokens, running) as ws:
        ws.send(json.dumps({"content": "http500"}))
        error = _until_final(ws)[-1]
        assert error["role"] == "system" and error["error"] == "model server exploded" and "500" in error["content"]
        ws.send(json.dumps({"content": "cut"}))
        frames = _until_final(ws)
        assert frames[0]["content"] == "half a rep" and frames[-1]["error"] == "stream ended early"


def test_bad_frames_get_an_error_and_the_socket_stays_open(
    gateway: ServerThread, tokens: dict[str, Any], running: str
) -> None:
    with _open(gateway, tokens, running) as ws:
        for bad in ("not json", json.dumps({"text": "wrong key"}), json.dumps({"content": ""})):
            ws.send(bad)
            frame = json.loads(ws.recv(timeout=10))
            assert frame["role"] == "system" and frame["error"] == "bad frame"
        ws.send(json.dumps({"content": "fine now"}))
        assert _until_final(ws)[-1]["done"] is True


def test_client_disconnect_cancels_the_upstream_request(
    gateway: ServerThread, tokens: dict[str, Any], running: str, agent: tuple[ChatAgent, ServerThread]
) -> None:
    agent[0].cancelled.clear()
    with _open(gateway, tokens, running) as ws:
        ws.send(json.dumps({"content": "slow"}))
        assert json.loads(ws.recv(timeout=10))["content"] == "thinking"
        assert not agent[0].cancelled.is_set()
    assert agent[0].cancelled.wait(10), "the agent kept generating after the client left"


def test_stopped_agent_gets_error_frame_and_4409(
    client: httpx.Client, gateway: ServerThread, tokens: dict[str, Any]
) -> None:
    assert client.post("/api/agents", json={"name": "sleeper", "state": "stopped"}).status_code == 201
    gateway.call(gateway.app.state.deps.store.update_status(Agent, "sleeper", AgentStatus(phase=Phase.STOPPED)))
    with _open(gateway, tokens, "sleeper") as ws:
        frame = json.loads(ws.recv(timeout=10))
        assert frame["role"] == "system" and frame["error"] == "not running" and "stopped" in frame["content"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409


def test_unknown_agent_gets_4404(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    with _open(gateway, tokens, "nobody-here") as ws:
        assert json.loads(ws.recv(timeout=10))["error"] == "unknown agent"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_unreachable_endpoint_is_an_error_frame(
    client: httpx.Client, gateway: ServerThread, tokens: dict[str, Any]
) -> None:
    assert client.post("/api/agents", json={"name": "gone-away"}).status_code == 201
    status = AgentStatus(phase=Phase.RUNNING, endpoint="http://127.0.0.1:9")  # discard port: nothing listens
    gateway.call(gateway.app.state.deps.store.update_status(Agent, "gone-away", status))
    with _open(gateway, tokens, "gone-away") as ws:
        ws.send(json.dumps({"content": "anyone?"}))
        frame = _until_final(ws)[-1]
        assert frame["role"] == "system" and frame["error"] == "unreachable"


def test_logs_stream_with_engine_down_closes_4503(gateway: ServerThread, tokens: dict[str, Any], running: str) -> None:
    with connect(f"{gateway.ws_url}/api/agents/{running}/logs/stream?token={tokens['access_token']}") as ws:
        assert json.loads(ws.recv(timeout=10))["error"] == "runtime unavailable"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503


def test_tokens_in_websocket_urls_are_redacted_from_server_logs(tmp_path: Any) -> None:
    import logging

    from api.app import create_app
    from tests.api.conftest import (
        PASSWORD,
        UnreachableRuntime,
        login,
        make_catalog,
        make_settings,
        make_store,
    )

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    settings = make_settings(tmp_path)
    app = create_app(
        settings,
        make_store(settings),
        UnreachableRuntime(),
        make_catalog(settings),
        env={"CLAWPEN_ADMIN_PASSWORD": PASSWORD},
    )
    loud = ServerThread(app, log_level="info")  # uvicorn's logging config is applied here
    handler = Collect()
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        with loud.start():
            token = login(loud.url)["access_token"]
            with connect(f"{loud.ws_url}/api/agents/nobody/chat?token={token}") as ws:
                ws.recv(timeout=10)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    logged = "\n".join(lines)
    assert "chat?token=[redacted]" in logged
    assert token not in logged
