"""The agent program's HTTP surface: the chat contract the gateway (or any client) speaks.

OpenAI-compatible on purpose: any client that talks to OpenAI can talk to an agent, and any image that
serves this contract can be an agent. One addition: a `session` (body field or X-Clawpen-Session
header). With one, the agent owns the conversation: it prepends its system prompt and the stored
history, so callers send only the new message, and the history lives on the /data volume.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.config import AgentConfig
from agent.providers import ProviderError, complete, stream_chat
from agent.sessions import InvalidSession, SessionStore, trim_history, validate_session_id
from agent.tools.agent_tools import AgentTools, turn_failed_note
from agent.tools.loop import ApprovalRequest, TextDelta, ToolCallEvent, ToolResultEvent

log = logging.getLogger("agent")
MAX_BODY_BYTES = 1_000_000
CHAT_ROLES = ("system", "user", "assistant")


class BadRequest(ValueError):
    pass


def _error(status: int, message: str, type_: str = "invalid_request_error", **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, **extra}}, status_code=status)


def _text_content(content: Any, index: int) -> str:
    """OpenAI allows content as a string or a list of parts; we carry the text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content):
            return "".join(parts)
        raise BadRequest(f"messages[{index}].content: only text parts are supported")
    raise BadRequest(f"messages[{index}].content must be a string")


def _parse_messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' must be a non-empty list of {role, content}")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object with role and content")
        role = m.get("role")
        if role not in CHAT_ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {', '.join(CHAT_ROLES)} (got {str(role)[:20]!r})")
        messages.append({"role": role, "content": _text_content(m.get("content"), i)})
    return messages


class AgentApp:
    """Holds config, the session store and one pooled HTTP client for the provider."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self.sessions = SessionStore(config.data_dir)
        self.client: httpx.AsyncClient | None = None
        self.tools = AgentTools(config)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.client = httpx.AsyncClient()
        self.tools.start()
        reason = self.config.not_ready_reason()
        log.info(
            "agent %s/%s: provider=%s model=%s %s",
            self.config.namespace,
            self.config.name,
            self.config.display_provider,
            self.config.model or "-",
            "ready" if reason is None else f"NOT READY: {reason}",
        )
        try:
            yield
        finally:
            await self.tools.close()
            await self.client.aclose()

    # ---- routes ----------------------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        reason = self.config.not_ready_reason()
        base = {"agent": self.config.name, "namespace": self.config.namespace}
        if reason:
            return JSONResponse({"status": "unconfigured", "reason": reason, **base}, status_code=503)
        if self.tools.starting:
            # Ready only once every MCP server answered or failed: the first healthy probe then
            # already tells the controller whether the tools are degraded.
            return JSONResponse({"status": "starting", "reason": "connecting to MCP servers", **base}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                **base,
                "provider": self.config.provider,
                "model": self.config.model,
                **self.tools.health(),
            }
        )

    async def approvals(self, request: Request) -> Response:
        """The client's answer to an approval_request: {"id": ..., "approve": true|false}."""
        try:
            body = await self._json_body(request)
        except BadRequest as err:
            return _error(400, str(err))
        call_id, approve = body.get("id"), body.get("approve")
        if not isinstance(call_id, str) or not isinstance(approve, bool):
            return _error(400, 'send {"id": "<tool call id>", "approve": true|false}')
        if not self.tools.approvals.answer(call_id, approve):
            return _error(404, f"no tool call {call_id[:80]!r} is waiting for approval", "not_found")
        return JSONResponse({"id": call_id, "approved": approve})

    async def models(self, request: Request) -> Response:
        data = []
        if self.config.model:
            data.append({"id": self.config.model, "object": "model", "owned_by": self.config.provider or "unknown"})
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(self, request: Request) -> Response:
        reason = self.config.not_ready_reason()
        if reason:
            return _error(503, f"agent not ready: {reason}", "agent_not_ready")
        try:
            body = await self._json_body(request)
            messages = _parse_messages(body.get("messages"))
            session = body.get("session") or request.headers.get("x-clawpen-session") or None
            if session is not None:
                validate_session_id(session)
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise BadRequest("'stream' must be true or false")
        except (BadRequest, InvalidSession) as err:
            return _error(400, str(err))
        if stream:
            return StreamingResponse(
                self._stream_tools(messages, session) if self.tools.enabled else self._stream(messages, session),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        return await self._complete(messages, session)

    # ---- chat ------------------------------------------------------------------------------------
    async def _json_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadRequest("request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        return body

    async def _upstream_messages(self, messages: list[dict[str, str]], session: str | None) -> list[dict[str, str]]:
        prompt = self.config.system_prompt()
        history = await asyncio.to_thread(self.sessions.read, session) if session else []
        history = trim_history(history, self.config.history_chars)
        return ([{"role": "system", "content": prompt}] if prompt else []) + history + messages

    async def _remember(
        self, session: str | None, messages: list[dict[str, str]], reply: str | list[dict[str, Any]]
    ) -> None:
        """Store the turn only once the reply is whole, so a failed turn can simply be retried.

        `reply` is the text, or the turn's records (tool calls and results, then the answer)."""
        if session is None:
            return
        tail = [{"role": "assistant", "content": reply}] if isinstance(reply, str) else reply
        records = [m for m in messages if m["role"] != "system"] + tail
        await asyncio.to_thread(self.sessions.append, session, records)

    @contextlib.asynccontextmanager
    async def _turn(self, session: str | None) -> AsyncIterator[None]:
        # Turns of one session run one at a time: each must see the previous one's reply.
        if session is None:
            yield
            return
        async with self.sessions.lock(session):
            yield

    def _chunk(self, cid: str, created: int, delta: dict[str, str], finish: str | None = None) -> str:
        event = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": self.config.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"

    async def _stream(self, messages: list[dict[str, str]], session: str | None) -> AsyncIterator[str]:
        cid, created, started = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), time.monotonic()
        parts: list[str] = []
        try:
            async with self._turn(session):
                upstream = await self._upstream_messages(messages, session)
                yield self._chunk(cid, created, {"role": "assistant"})
                # aclosing: however this generator ends (client gone included), the upstream closes now.
                chunks = stream_chat(self.config.provider_config(), upstream, client=self.client)
                async with contextlib.aclosing(chunks):
                    async for text in chunks:
                        if isinstance(text, str):  # without tools offered, only text arrives
                            parts.append(text)
                            yield self._chunk(cid, created, {"content": text})
                await self._remember(session, messages, "".join(parts))
            yield self._chunk(cid, created, {}, "stop")
            yield "data: [DONE]\n\n"
            log.info(
                "chat session=%s stream chunks=%d %.2fs",
                session or "-",
                len(parts),
                time.monotonic() - started,
            )
        except ProviderError as err:
            log.warning("chat session=%s failed after %d chunks: %s", session or "-", len(parts), err)
            yield f"data: {json.dumps(err.to_json(), ensure_ascii=False)}\n\n"
        except OSError as err:
            log.error("chat session=%s: cannot store the session: %s", session or "-", err)
            message = f"agent cannot store session {session}: {err.strerror or err}"
            yield f"data: {json.dumps({'error': {'message': message, 'type': 'storage_error'}})}\n\n"
        except asyncio.CancelledError:
            log.info(
                "chat session=%s: client went away after %d chunks; upstream cancelled",
                session or "-",
                len(parts),
            )
            raise

    def _sse(self, event: dict[str, Any]) -> str:
        return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"

    async def _stream_tools(self, messages: list[dict[str, str]], session: str | None) -> AsyncIterator[str]:
        """The streamed turn with tools: text chunks as before, tool events as `{"type": ...}` events."""
        cid, created, started = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), time.monotonic()
        transcript: list[dict[str, Any]] = []
        try:
            async with self._turn(session):
                upstream: list[dict[str, Any]] = list(await self._upstream_messages(messages, session))
                yield self._chunk(cid, created, {"role": "assistant"})
                try:
                    events = self.tools.run_turn(self.config.provider_config(), upstream, self.client, transcript)
                    async with contextlib.aclosing(events):
                        async for event in events:
                            if isinstance(event, TextDelta):
                                yield self._chunk(cid, created, {"content": event.text})
                            elif isinstance(event, ToolCallEvent):
                                c = event.call
                                yield self._sse(
                                    {
                                        "type": "tool_call",
                                        "id": c.id,
                                        "name": c.name,
                                        "arguments": c.arguments if c.arguments is not None else c.raw_arguments,
                                    }
                                )
                            elif isinstance(event, ApprovalRequest):
                                c = event.call
                                self.tools.approvals.register(c.id)
                                yield self._sse(
                                    {
                                        "type": "approval_request",
                                        "id": c.id,
                                        "name": c.name,
                                        "arguments": c.arguments,
                                        "timeout_s": event.timeout,
                                    }
                                )
                            elif isinstance(event, ToolResultEvent):
                                yield self._sse(
                                    {
                                        "type": "tool_result",
                                        "id": event.call.id,
                                        "name": event.call.name,
                                        "output": event.result.output,
                                        "is_error": event.result.is_error,
                                    }
                                )
                except (ProviderError, TimeoutError) as err:
                    if any(r["role"] == "tool" for r in transcript):  # what the tools did stays on record
                        transcript.append({"role": "assistant", "content": turn_failed_note(err)})
                        await self._remember(session, messages, transcript)
                    raise
                await self._remember(session, messages, transcript)
            yield self._chunk(cid, created, {}, "stop")
            yield "data: [DONE]\n\n"
            steps = sum(1 for r in transcript if r["role"] == "tool")
            log.info("chat session=%s tools calls=%d %.2fs", session or "-", steps, time.monotonic() - started)
        except ProviderError as err:
            log.warning("chat session=%s failed: %s", session or "-", err)
            yield self._sse(err.to_json())
        except TimeoutError:
            message = f"the turn used its whole time budget ({self.config.tools.turn_timeout:g}s)"
            yield self._sse({"error": {"message": message, "type": "turn_timeout"}})
        except OSError as err:
            message = f"agent cannot store session {session}: {err.strerror or err}"
            yield self._sse({"error": {"message": message, "type": "storage_error"}})

    async def _complete(self, messages: list[dict[str, str]], session: str | None) -> Response:
        try:
            async with self._turn(session):
                upstream = await self._upstream_messages(messages, session)
                if self.tools.enabled:
                    transcript: list[dict[str, Any]] = []
                    reply = await self.tools.complete_turn(
                        self.config.provider_config(), list(upstream), self.client, transcript
                    )
                    await self._remember(session, messages, transcript)
                else:
                    reply = await complete(self.config.provider_config(), upstream, client=self.client)
                    await self._remember(session, messages, reply)
        except ProviderError as err:
            log.warning("chat session=%s failed: %s", session or "-", err)
            headers = {"retry-after": f"{err.retry_after:.0f}"} if err.retry_after is not None else None
            return JSONResponse(err.to_json(), status_code=err.http_status, headers=headers)
        except TimeoutError:
            return _error(
                504, f"the turn used its whole time budget ({self.config.tools.turn_timeout:g}s)", "turn_timeout"
            )
        except OSError as err:
            return _error(500, f"agent cannot store session {session}: {err.strerror or err}", "storage_error")
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.config.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            }
        )


class RequireToken:
    """Every path but /healthz needs `Authorization: Bearer <the agent's token>`.

    The token is the file /run/secrets/clawpen-agent-token that the controller mounts (never an env
    var). It is read per request (a few bytes on tmpfs), so a replaced token takes effect at once.
    Without the file the agent answers nothing but /healthz: an agent must never be open by accident.
    """

    def __init__(self, app: ASGIApp, token_file: Path):
        self.app, self.token_file = app, token_file

    def _expected(self) -> bytes | None:
        try:
            return self.token_file.read_bytes().strip() or None
        except OSError:
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/healthz":
            await self.app(scope, receive, send)
            return
        expected = self._expected()
        presented = b""
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                kind, _, credential = value.partition(b" ")
                if kind.lower() == b"bearer":
                    presented = credential.strip()
        if expected is None:
            response = _error(401, "this agent has no token configured; it answers only /healthz", "unauthorized")
        elif not presented or not hmac.compare_digest(expected, presented):
            response = _error(401, "missing or wrong bearer token", "unauthorized")
        else:
            await self.app(scope, receive, send)
            return
        response.headers["www-authenticate"] = 'Bearer realm="clawpen-agent"'
        await response(scope, receive, send)


def create_app(config: AgentConfig | None = None) -> Starlette:
    agent = AgentApp(config or AgentConfig.from_env())
    app = Starlette(
        routes=[
            Route("/healthz", agent.healthz, methods=["GET"]),
            Route("/v1/models", agent.models, methods=["GET"]),
            Route("/v1/chat/completions", agent.chat_completions, methods=["POST"]),
            Route("/v1/chat/approvals", agent.approvals, methods=["POST"]),
        ],
        lifespan=agent.lifespan,
        middleware=[Middleware(RequireToken, token_file=agent.config.token_file)],
    )
    app.state.agent = agent
    return app
