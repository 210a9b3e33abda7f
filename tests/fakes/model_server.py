"""A fake model provider speaking OpenAI chat completions and Anthropic Messages, for tests.

Model APIs are the one thing our tests may fake (no internet, no GPUs). The fake is a real HTTP server
(uvicorn in a background thread, bound to 0.0.0.0 on an ephemeral port) so the code under test, in
process or inside an agent container (as http://host.docker.internal:<port>), talks real HTTP to it.

Tests script it per request with `Script`s: a fixed reply, a reply computed from the request (echo
the message count, the last user message, a classifier's JSON), an HTTP error, delays, a stream that
drops mid-way. It records every request, including whether the client went away before the end,
so a test can assert that history was sent and that a cancelled chat cancelled upstream.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server_thread import ServerThread

ReplyFn = Callable[[dict[str, Any]], str]


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "id": call_id}


def calls(*items: tuple[str, dict[str, Any] | str]) -> Script:
    """A script whose reply is only tool calls (ids call_1, call_2, ... in order)."""
    return Script(reply="", tool_calls=tuple(tool_call(n, a) for n, a in items))


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the model was sent, in either style, as {"id", "content", "is_error"}."""
    out: list[dict[str, Any]] = []
    for m in body.get("messages", []):
        if m.get("role") == "tool":
            out.append({"id": m.get("tool_call_id"), "content": m.get("content"), "is_error": None})
        elif isinstance(m.get("content"), list):
            for block in m["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    out.append({"id": block.get("tool_use_id"), "content": block.get("content"),
                                "is_error": block.get("is_error")})
    return out


def tool_names(body: dict[str, Any]) -> list[str]:
    """The names of the tools offered in a request, in either style."""
    return [t.get("name") or (t.get("function") or {}).get("name") for t in body.get("tools") or []]


@dataclass(frozen=True)
class Script:
    """How the fake answers one request.

    reply: the text, or a function of the request body. chunks: how many pieces to stream it in (by
    words when None). status: answer with this HTTP error instead. drop_after: stream this many
    chunks then cut the connection without finishing. delay: seconds before the response starts
    (spent sending SSE keep-alive comments every `keepalive_every` seconds when that is set);
    chunk_delay: seconds between streamed chunks.
    """

    reply: str | ReplyFn = "Hello from the fake model."
    status: int | None = None
    error_message: str = "scripted error"
    retry_after: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    drop_after: int | None = None
    chunks: int | None = None
    keepalive_every: float = 0.0  # streamed: spend `delay` sending SSE comments this often, not silent
    timestamps: bool = False  # OpenAI streamed: `chunks` chunks, each "<perf_counter() when sent> "
    # Ask for tool calls: each {"name", "arguments" (dict, or a str sent verbatim), "id"?}, streamed in
    # each style's pieces (argument JSON split across deltas) after any `reply` text.
    tool_calls: tuple[dict[str, Any], ...] = ()

    @property
    def silent_delay(self) -> float:
        return 0.0 if self.keepalive_every else self.delay


def last_user_message(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            return str(m.get("content"))
    return ""


def echo_count(body: dict[str, Any]) -> str:
    """Reply 'messages=N system=S last=TEXT' so tests can assert what history the model saw."""
    messages = body.get("messages", [])
    has_system = bool(body.get("system")) or any(m.get("role") == "system" for m in messages)
    return f"messages={len(messages)} system={int(has_system)} last={last_user_message(body)}"


def classifier(choose: Callable[[str], tuple[str, float]]) -> ReplyFn:
    """A router-classifier reply: JSON {intent, confidence, reasoning} chosen from the last user message."""

    def reply(body: dict[str, Any]) -> str:
        text = last_user_message(body)
        intent, confidence = choose(text)
        return json.dumps({"intent": intent, "confidence": confidence, "reasoning": f"fake: chose {intent}"})

    return reply


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)
    completed: bool = False  # the whole response was sent
    disconnected: bool = False  # the client went away before the end

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))


STAMP = "@@PERF_COUNTER@@"  # replaced by the send time as each chunk leaves (Script.timestamps)


def _split(text: str, count: int | None) -> list[str]:
    if count is None:
        words = text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] if text else []
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)]


class FakeModelServer:
    """Start with `start()` (or use the `fake_model` fixture); script with `push()` / `default`."""

    def __init__(self, host: str = "0.0.0.0"):
        self.host = host
        self.port = 0
        self.default = Script()
        self.requests: list[RecordedRequest] = []
        self._queue: list[Script] = []
        self._lock = threading.Lock()
        self._thread: ServerThread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # ---- scripting -------------------------------------------------------------------------------
    def push(self, *scripts: Script) -> None:
        """Queue scripts for the next requests, in order; afterwards `default` answers."""
        with self._lock:
            self._queue.extend(scripts)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = Script()

    def _next(self) -> Script:
        with self._lock:
            return self._queue.pop(0) if self._queue else self.default

    @property
    def url(self) -> str:
        """Base URL for the OpenAI style from this host (the /v1 is part of it, as for api.openai.com)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def container_url(self, style: str = "openai") -> str:
        base = f"http://host.docker.internal:{self.port}"
        return f"{base}/v1" if style == "openai" else base

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeModelServer:
        self._thread = ServerThread(self.app, host=self.host, lifespan="off").start()
        self.port = self._thread.port
        return self

    def stop(self) -> None:
        if self._thread:
            self._thread.stop()

    # ---- handlers --------------------------------------------------------------------------------
    async def _record(self, request: Request) -> tuple[RecordedRequest, Script]:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        rec = RecordedRequest(request.url.path, dict(request.headers), body if isinstance(body, dict) else {})
        with self._lock:
            self.requests.append(rec)
        return rec, self._next()

    @staticmethod
    def _text(script: Script, body: dict[str, Any]) -> str:
        return script.reply(body) if callable(script.reply) else script.reply

    @staticmethod
    def _error(script: Script, anthropic: bool) -> Response:
        assert script.status is not None
        headers = {"retry-after": script.retry_after} if script.retry_after else {}
        if anthropic:
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": "api_error", "message": script.error_message},
            }
        else:
            body = {"error": {"message": script.error_message, "type": "fake_error", "code": script.status}}
        return JSONResponse(body, status_code=script.status, headers=headers)

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def _openai(self, request: Request) -> Response:
        rec, script = await self._record(request)
        if script.silent_delay or (script.delay and not rec.body.get("stream")):
            await asyncio.sleep(script.delay)
        if script.status:
            rec.completed = True
            return self._error(script, anthropic=False)
        text = self._text(script, rec.body)
        if script.timestamps:
            text = " ".join([STAMP] * (script.chunks or 1))
        model = rec.body.get("model", "fake")
        if not rec.body.get("stream"):
            rec.completed = True
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            event = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(event)}\n\n"

        async def events() -> AsyncIterator[tuple[str, bool]]:
            yield chunk({"role": "assistant"}), False
            for piece in _split(text, None if script.timestamps else script.chunks):
                yield chunk({"content": piece}), True
            for i, call in enumerate(script.tool_calls):
                args = _args(call)
                half = len(args) // 2
                first = {"index": i, "id": call.get("id") or f"call_{i + 1}", "type": "function",
                         "function": {"name": call["name"], "arguments": args[:half]}}
                yield chunk({"tool_calls": [first]}), False
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]}), False
            yield chunk({}, "tool_calls" if script.tool_calls else "stop"), False
            yield "data: [DONE]\n\n", False

        return self._stream(rec, script, events())

    async def _anthropic(self, request: Request) -> Response:
        rec, script = await self._record(request)
        if script.silent_delay or (script.delay and not rec.body.get("stream")):
            await asyncio.sleep(script.delay)
        if script.status:
            rec.completed = True
            return self._error(script, anthropic=True)
        text = self._text(script, rec.body)
        model = rec.body.get("model", "fake")
        if not rec.body.get("stream"):
            rec.completed = True
            return JSONResponse(
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                }
            )

        def event(name: str, data: dict[str, Any]) -> str:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

        async def events() -> AsyncIterator[tuple[str, bool]]:
            yield (
                event("message_start", {"message": {"id": "msg_fake", "role": "assistant", "content": []}}),
                False,
            )
            yield (
                event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
                False,
            )
            yield ": keep-alive comment\n\n", False
            for piece in _split(text, script.chunks):
                delta = {"index": 0, "delta": {"type": "text_delta", "text": piece}}
                yield event("content_block_delta", delta), True
            yield event("content_block_stop", {"index": 0}), False
            for i, call in enumerate(script.tool_calls, start=1):
                args = _args(call)
                half = len(args) // 2
                block = {"type": "tool_use", "id": call.get("id") or f"toolu_{i}", "name": call["name"], "input": {}}
                yield event("content_block_start", {"index": i, "content_block": block}), False
                for piece in (args[:half], args[half:]):
                    delta = {"index": i, "delta": {"type": "input_json_delta", "partial_json": piece}}
                    yield event("content_block_delta", delta), False
                yield event("content_block_stop", {"index": i}), False
            stop = "tool_use" if script.tool_calls else "end_turn"
            yield event("message_delta", {"delta": {"stop_reason": stop}}), False
            yield event("message_stop", {}), False

        return self._stream(rec, script, events())

    def _stream(self, rec: RecordedRequest, script: Script, events: AsyncIterator[tuple[str, bool]]) -> Response:
        async def body() -> AsyncIterator[str]:
            sent_content = 0
            try:
                if script.keepalive_every:
                    until = time.monotonic() + script.delay
                    while time.monotonic() < until:
                        yield ": keep-alive\n\n"
                        await asyncio.sleep(script.keepalive_every)
                async for item, is_content in events:
                    if is_content:
                        if script.drop_after is not None and sent_content >= script.drop_after:
                            # An exception after the response started makes uvicorn close the connection
                            # with the chunked body unterminated: the client sees a dropped stream.
                            raise DroppedStream("scripted drop")
                        if sent_content and script.chunk_delay:
                            await asyncio.sleep(script.chunk_delay)
                        sent_content += 1
                        if script.timestamps:
                            item = item.replace(STAMP, f"{time.perf_counter():.6f}")
                    yield item
                rec.completed = True
            except asyncio.CancelledError:
                # Starlette cancels the body when it hears http.disconnect: the client went away.
                rec.disconnected = True
                raise

        return StreamingResponse(body(), media_type="text/event-stream")


def _args(call: dict[str, Any]) -> str:
    value = call.get("arguments", {})
    return value if isinstance(value, str) else json.dumps(value)


class DroppedStream(Exception):
    """Raised inside a scripted stream to cut the connection mid-reply."""


# ---- pytest fixtures: import into a test module (`from tests.fakes.model_server import fake_model`)
try:
    import pytest
except ImportError:  # pragma: no cover - the fake is also usable outside pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="module")
    def fake_model_server() -> Any:
        server = FakeModelServer().start()
        yield server
        server.stop()

    @pytest.fixture
    def fake_model(fake_model_server: FakeModelServer) -> FakeModelServer:
        """The module's fake model server, with an empty script queue and no recorded requests."""
        fake_model_server.reset()
        return fake_model_server
