"""WebSockets: the chat relay to an agent's chat contract, and a live log follower.

Chat: each client frame `{"content", "session"?}` becomes one streaming POST to the agent's
OpenAI-compatible /v1/chat/completions (the agent keeps the history per session, so only the new
message travels). Server-sent deltas go out as they arrive, then one `done` frame with the full
text. A client that goes away cancels the upstream request (the agent stops generating), and an
agent that is not running gets an error frame and a close code instead of a hang:

  4401 unauthorized (the auth guard) · 4404 unknown agent · 4409 agent not running / no endpoint
  4503 the runtime cannot be reached · 1008 more than 16 frames waiting for replies · 1009 frame too big
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.approvals import ApprovalRouter, approval_answer, tool_frame
from api.context import Deps, deps
from api.errors import field_errors
from api.permissions import AGENTS_CHAT, AGENTS_READ, WebSocketRoute, need
from api.schemas import ChatIn
from api.wake import wake_for_chat
from controller.agent_token import auth_headers
from controller.resources import Agent, Phase
from controller.runtime.base import RuntimeError_, RuntimeUnavailable
from controller.store.base import NotFound, StoreError
from controller.translate import program_for

WS_UNKNOWN_AGENT = 4404
WS_NOT_RUNNING = 4409
WS_RUNTIME_DOWN = 4503
WS_POLICY = 1008  # the client broke the session's rules (too many frames ahead of the replies)
WS_TOO_BIG = 1009
MAX_PENDING_FRAMES = 16
MAX_FRAME_CHARS = 1_000_000  # ChatIn.content allows 200,000 characters; JSON escaping may grow it
UPSTREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=30.0, pool=5.0)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_frame(error: str, content: str) -> dict[str, Any]:
    return {"role": "system", "error": error, "content": content, "timestamp": now_iso()}


async def _close_with(ws: WebSocket, code: int, error: str, content: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.send_json(error_frame(error, content))
        await ws.close(code=code, reason=error)


def not_ready(agent: Agent) -> str | None:
    status = agent.status
    if status is not None and status.phase == Phase.SUSPENDED and status.endpoint:
        return None  # api.wake thaws it on the next message
    if status is None or status.phase != Phase.RUNNING:
        phase = status.phase.value.lower() if status else "pending"
        return f"agent {agent.name!r} is {phase}, not running; start it and wait for status running"
    if not status.endpoint:
        return f"agent {agent.name!r} has no chat endpoint yet"
    return None


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data` of each server-sent event (multi-line data joined with newlines)."""
    buffer: list[str] = []
    async for line in lines:
        if line == "":
            if buffer:
                yield "\n".join(buffer)
                buffer = []
        elif line.startswith("data:"):
            buffer.append(line[5:].removeprefix(" "))
        # comments (":...") and other fields (event, id, retry) carry nothing we use
    if buffer:
        yield "\n".join(buffer)


def _error_text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("message") or value.get("error") or json.dumps(value))[:2000]
    return str(value)[:2000]


async def parse_chat_frame(ws: WebSocket, raw: str) -> ChatIn | None:
    """A client's chat frame, or None after telling the client what was wrong with it."""
    try:
        return ChatIn.model_validate_json(raw)
    except ValidationError as err:
        fields = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(err))
        await ws.send_json(error_frame("bad frame", f'send {{"content": "...", "session": "main"}} ({fields})'))
        return None


def new_inbox() -> asyncio.Queue[str | None]:
    """A chat session's inbox: frames the client sent while a reply streams, bounded (see read_client)."""
    return asyncio.Queue(maxsize=MAX_PENDING_FRAMES + 1)  # +1: room for the end-of-session marker


async def read_client(
    ws: WebSocket,
    inbox: asyncio.Queue[str | None] | None,
    gone: asyncio.Event,
    approvals: ApprovalRouter | None = None,
) -> None:
    """Receive frames into `inbox` while a reply streams, and notice a disconnect at once.
    Approval answers go straight to `approvals` (the turn that waits for them is still streaming).

    The inbox is bounded: a client that sends more than MAX_PENDING_FRAMES frames ahead of the
    replies is closed with 1008, and a frame bigger than any valid chat frame with 1009, each with an
    error frame saying why (unbounded, a fast sender drove the gateway from 160 to 901 MiB in 7 s).
    `inbox=None` reads only to notice the disconnect (the log stream), discarding what is sent.
    """
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", "replace")
            if text is None or inbox is None:
                continue
            if len(text) > MAX_FRAME_CHARS:
                await _close_with(
                    ws, WS_TOO_BIG, "frame too big", f"a chat frame may hold at most {MAX_FRAME_CHARS} characters"
                )
                break
            answer = approval_answer(text) if approvals is not None else None
            if answer is not None and approvals is not None:
                approvals.submit(answer)
                continue
            if inbox.qsize() >= MAX_PENDING_FRAMES:
                await _close_with(
                    ws,
                    WS_POLICY,
                    "too many frames",
                    f"more than {MAX_PENDING_FRAMES} messages are waiting for replies; wait for a done frame "
                    "before sending more",
                )
                break
            inbox.put_nowait(text)
    finally:
        gone.set()
        if inbox is not None:
            while inbox.full():  # the session is over: what was pending will not be answered
                inbox.get_nowait()
            inbox.put_nowait(None)


async def relay(
    ws: WebSocket, d: Deps, agent: Agent, frame: ChatIn, approvals: ApprovalRouter | None = None
) -> None:
    """One user message → the agent's stream → delta frames (and tool frames), then a done or an
    error frame. While it streams, the client's approval answers go to this agent."""
    assert agent.status is not None and agent.status.endpoint and d.http is not None
    if approvals is not None:  # the agent's own token, as for the chat request itself
        approvals.target = (agent.name, agent.status.endpoint, await auth_headers(d.tokens, agent.key))
    try:
        await _relay(ws, d, agent, frame)
    finally:
        if approvals is not None:
            approvals.target = None


async def _relay(ws: WebSocket, d: Deps, agent: Agent, frame: ChatIn) -> None:
    assert agent.status is not None and agent.status.endpoint and d.http is not None
    # The agent's program says how it wants a chat turn (body shape, path); the gateway adds the
    # per-agent bearer token, which clients never see.
    request = program_for(agent, d.catalog).chat_request(frame.content, frame.session, agent.spec.model)
    url = agent.status.endpoint.rstrip("/") + request.path
    payload = request.body
    headers = dict(request.headers)
    parts: list[str] = []
    finished = False
    try:
        headers.update(await auth_headers(d.tokens, agent.key))
        async with d.http.stream("POST", url, json=payload, headers=headers, timeout=UPSTREAM_TIMEOUT) as answer:
            if answer.status_code != 200:
                body = (await answer.aread())[:4000].decode("utf-8", "replace")
                try:
                    detail = _error_text(json.loads(body).get("error", body))
                except (ValueError, AttributeError):
                    detail = body.strip() or answer.reason_phrase
                await ws.send_json(error_frame(detail, f"agent {agent.name} answered {answer.status_code}: {detail}"))
                return
            async for data in sse_data(answer.aiter_lines()):
                if data.strip() == "[DONE]":
                    finished = True
                    break
                try:
                    event = json.loads(data)
                except ValueError:
                    await ws.send_json(error_frame("bad stream", f"agent {agent.name} sent a malformed event"))
                    return
                if isinstance(event, dict) and event.get("error") is not None:
                    detail = _error_text(event["error"])
                    await ws.send_json(error_frame(detail, f"agent {agent.name}: {detail}"))
                    return
                tool = tool_frame(event, now_iso())
                if tool is not None:
                    await ws.send_json(tool)
                    continue
                choice = (event.get("choices") or [{}])[0] if isinstance(event, dict) else {}
                chunk = (choice.get("delta") or {}).get("content")
                if chunk:
                    parts.append(chunk)
                    await ws.send_json({"role": "assistant", "content": chunk, "delta": True, "timestamp": now_iso()})
                if choice.get("finish_reason"):
                    finished = True
    except httpx.TimeoutException:
        await ws.send_json(error_frame("timeout", f"agent {agent.name} did not answer in time"))
        return
    except httpx.HTTPError as err:
        await ws.send_json(error_frame("unreachable", f"agent {agent.name} is unreachable ({type(err).__name__})"))
        return
    if not finished:
        await ws.send_json(error_frame("stream ended early", f"agent {agent.name}'s reply was cut off"))
        return
    await ws.send_json({"role": "assistant", "done": True, "content": "".join(parts), "timestamp": now_iso()})


async def chat(ws: WebSocket) -> None:
    d = deps(ws)
    name = ws.path_params["id"]
    await ws.accept()
    inbox = new_inbox()
    gone = asyncio.Event()
    approvals = ApprovalRouter(ws, d.http, error_frame)
    reader = asyncio.create_task(read_client(ws, inbox, gone, approvals))
    try:
        while True:
            try:
                agent = await d.agent(name)
            except NotFound:
                await _close_with(ws, WS_UNKNOWN_AGENT, "unknown agent", f"agent {name!r} not found")
                return
            except StoreError as err:  # e.g. its file was hand-edited into something invalid
                await _close_with(ws, WS_NOT_RUNNING, "invalid agent", str(err))
                return
            problem = not_ready(agent)
            if problem:
                await _close_with(ws, WS_NOT_RUNNING, "not running", problem)
                return
            raw = await inbox.get()
            if raw is None:
                return
            frame = await parse_chat_frame(ws, raw)
            if frame is None:
                continue
            # Re-read: the agent may have been stopped or replaced (new endpoint) since the last message.
            try:
                agent = await d.agent(name)
            except StoreError:
                continue  # the top of the loop closes with the reason
            if not_ready(agent):
                continue
            woken = await wake_for_chat(d, agent)
            if woken:
                await ws.send_json(error_frame("not running", woken))
                continue
            task = asyncio.create_task(relay(ws, d, agent, frame, approvals))
            waiter = asyncio.create_task(gone.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not task.done():  # the client left: dropping the stream cancels the agent's generation
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return
            if task.exception() is not None:  # a send to a client that just left
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def logs_stream(ws: WebSocket) -> None:
    d = deps(ws)
    name = ws.path_params["id"]
    await ws.accept()
    try:
        agent = await d.agent(name)
    except NotFound:
        await _close_with(ws, WS_UNKNOWN_AGENT, "unknown agent", f"agent {name!r} not found")
        return
    except StoreError as err:
        await _close_with(ws, WS_NOT_RUNNING, "invalid agent", str(err))
        return
    try:
        tail = max(0, min(10_000, int(ws.query_params.get("tail", "100"))))
    except ValueError:
        tail = 100
    gone = asyncio.Event()
    reader = asyncio.create_task(read_client(ws, None, gone))

    async def follow() -> None:
        lines = d.runtime.logs(agent.key, tail=tail, follow=True)
        try:
            async for line in lines:
                await ws.send_json(
                    {
                        "timestamp": line.timestamp.isoformat() if line.timestamp else None,
                        "level": line.level,
                        "message": line.message,
                        "stream": line.stream,
                    }
                )
        finally:
            aclose = getattr(lines, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    task = asyncio.create_task(follow())
    waiter = asyncio.create_task(gone.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return
        failure = task.exception()
        if isinstance(failure, RuntimeUnavailable):
            await _close_with(ws, WS_RUNTIME_DOWN, "runtime unavailable", str(failure))
        elif isinstance(failure, RuntimeError_):
            await _close_with(ws, WS_NOT_RUNNING, "no logs", str(failure))
        elif failure is None:
            with contextlib.suppress(Exception):
                await ws.close(code=1000, reason="log stream ended")
    finally:
        waiter.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


ROUTES = [
    WebSocketRoute("/api/agents/{id}/chat", chat, permission=need(AGENTS_CHAT, "agent")),
    WebSocketRoute("/api/agents/{id}/logs/stream", logs_stream, permission=need(AGENTS_READ, "agent")),
]
