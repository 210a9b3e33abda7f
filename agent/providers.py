"""Model-provider adapters: one streamed-text interface over two wire protocols.

Nearly every provider (OpenAI, OpenRouter, Together, Mistral, Ollama, LM Studio, vLLM, llama.cpp,
LiteLLM, ...) speaks OpenAI's chat-completions protocol; Anthropic speaks its Messages API. Callers
(the agent program, and the controller's team router) want neither: they want "send these messages,
give me text chunks, or a clear error". So both adapters yield plain text and raise ProviderError.

Why the error rules are strict: a chat relay that hangs is worse than one that fails. Every request
has timeouts (connect, per-chunk read, write, pool). A retry happens only when it cannot duplicate
or corrupt output: connect errors, 429 and 502-504, and only before the first chunk was delivered.

This module reads no environment at import: the controller imports it too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from agent.tools import wire
from agent.tools.base import Tool, ToolCall

ApiStyle = Literal["openai", "anthropic"]
ANTHROPIC_VERSION = "2023-06-01"
RETRYABLE_STATUS = frozenset({429, 502, 503, 504, 529})  # 529: Anthropic "overloaded"
MAX_RETRY_AFTER_SECONDS = 10.0  # a longer Retry-After is reported to the user, not waited out
_ERROR_DETAIL_CHARS = 300


@dataclass(frozen=True)
class ProviderConfig:
    """Where and how to reach one model. `name` is what error messages call the provider."""

    name: str
    api_style: ApiStyle
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 120.0  # seconds: the longest wait for a response or the next streamed chunk
    connect_timeout: float = 10.0
    max_retries: int = 2
    backoff_seconds: float = 0.5  # first retry delay; doubles each retry
    max_tokens: int = 4096  # Anthropic requires it; OpenAI-style requests leave it to the server

    def __post_init__(self) -> None:
        if self.api_style not in ("openai", "anthropic"):
            raise ValueError(f"unknown API style {self.api_style!r} (expected 'openai' or 'anthropic')")
        if not self.base_url:
            raise ValueError(f"provider {self.name}: no base URL")
        if not self.model:
            raise ValueError(f"provider {self.name}: no model")


class ProviderError(Exception):
    """An upstream failure, phrased for the user. Never contains the API key.

    `code` is stable for programs: auth, forbidden, rate_limited, upstream, bad_request, timeout,
    connect, dropped, protocol. `status` is the upstream HTTP status when there was one.
    """

    def __init__(
        self,
        provider: str,
        code: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        self.provider, self.code, self.status, self.retry_after = provider, code, status, retry_after
        self.detail = message
        super().__init__(f"{provider}: {message}")

    @property
    def retryable(self) -> bool:
        return self.code == "connect" or self.status in RETRYABLE_STATUS

    @property
    def http_status(self) -> int:
        """The status an HTTP front (the agent program) should answer with."""
        if self.code == "rate_limited":
            return 429
        if self.code == "timeout":
            return 504
        if self.code == "bad_request":
            return 400
        return 502

    def to_json(self) -> dict[str, Any]:
        """OpenAI-style error body."""
        err: dict[str, Any] = {
            "message": str(self),
            "type": "provider_error",
            "code": self.code,
            "provider": self.provider,
            "status": self.status,
        }
        if self.retry_after is not None:
            err["retry_after"] = self.retry_after
        return {"error": err}


Message = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _upstream_detail(body: bytes) -> str:
    """The provider's own error message if it sent one (both protocols use error.message)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_ERROR_DETAIL_CHARS]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:_ERROR_DETAIL_CHARS]
        if isinstance(err, str):
            return err[:_ERROR_DETAIL_CHARS]
    return text[:_ERROR_DETAIL_CHARS]


def _status_error(cfg: ProviderConfig, status: int, headers: httpx.Headers, body: bytes) -> ProviderError:
    detail = _upstream_detail(body)
    if cfg.api_key and len(cfg.api_key) >= 8:
        detail = detail.replace(cfg.api_key, "***")  # some providers echo the key they rejected
    suffix = f": {detail}" if detail else ""
    if status == 401:
        return ProviderError(cfg.name, "auth", f"HTTP 401 unauthorized (check the API key){suffix}", status)
    if status == 403:
        return ProviderError(cfg.name, "forbidden", f"HTTP 403 forbidden{suffix}", status)
    if status == 429:
        after = _retry_after(headers)
        hint = f", retry after {after:.0f}s" if after is not None else ""
        return ProviderError(cfg.name, "rate_limited", f"HTTP 429 rate limited{hint}{suffix}", status, after)
    if status == 404:
        return ProviderError(
            cfg.name,
            "bad_request",
            f"HTTP 404 not found (check the base URL and model {cfg.model!r}){suffix}",
            status,
        )
    if 400 <= status < 500:
        return ProviderError(cfg.name, "bad_request", f"HTTP {status}{suffix}", status)
    return ProviderError(cfg.name, "upstream", f"HTTP {status} server error{suffix}", status)


def _transport_error(cfg: ProviderConfig, err: httpx.HTTPError, started: bool) -> ProviderError:
    if isinstance(err, httpx.ConnectTimeout | httpx.ConnectError):
        hint = ""
        if "host.docker.internal" in cfg.base_url:
            # The common first-run problem: Ollama & co. listen on the host's 127.0.0.1 by default,
            # which is not reachable from a container. Say what to do, where the user looks first.
            hint = (
                "; a model server on the host must listen where containers reach it, not only on its "
                "127.0.0.1 (e.g. OLLAMA_HOST=0.0.0.0 ollama serve), or set the provider's base URL "
                "(see the README Quickstart)"
            )
        return ProviderError(cfg.name, "connect", f"cannot connect to {cfg.base_url} ({type(err).__name__}){hint}")
    if isinstance(err, httpx.TimeoutException):
        what = "the next chunk" if started else "a response"
        return ProviderError(cfg.name, "timeout", f"no answer: timed out after {cfg.timeout:g}s waiting for {what}")
    if isinstance(err, httpx.RemoteProtocolError | httpx.ReadError):
        return ProviderError(cfg.name, "dropped", "the connection dropped before the reply was complete")
    return ProviderError(cfg.name, "protocol", f"request failed ({type(err).__name__}: {err})")


def _openai_messages(messages: Sequence[Message]) -> list[Message]:
    if wire.has_tool_records(messages):
        return wire.openai_messages(messages)
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _request(
    cfg: ProviderConfig, messages: Sequence[Message], stream: bool, tools: Sequence[Tool] = ()
) -> tuple[str, dict, dict]:
    base = cfg.base_url.rstrip("/")
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
    }
    if cfg.api_style == "anthropic":
        if cfg.api_key:
            headers["x-api-key"] = cfg.api_key
        headers["anthropic-version"] = ANTHROPIC_VERSION
        # The documented base is https://api.anthropic.com; tolerate one that already ends in /v1.
        url = f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"
        return url, headers, wire.anthropic_body(cfg.model, cfg.max_tokens, messages, stream, tools)
    if cfg.api_key:
        headers["authorization"] = f"Bearer {cfg.api_key}"
    body: dict[str, Any] = {"model": cfg.model, "messages": _openai_messages(messages), "stream": stream}
    if tools:
        body["tools"] = wire.openai_tools(tools)
    return f"{base}/chat/completions", headers, body


def _timeout(cfg: ProviderConfig) -> httpx.Timeout:
    return httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout)


async def _sse_data(cfg: ProviderConfig, response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs from a server-sent-event stream.

    Comment lines are keep-alives (OpenRouter sends them while a model queues). They reset httpx's
    read timeout, so a server that only ever sends keep-alives is caught here instead.
    """
    event, data_lines = "", list[str]()
    last_data = time.monotonic()
    async for line in response.aiter_lines():
        if line == "":
            if data_lines:
                last_data = time.monotonic()
                yield event, "\n".join(data_lines)
            event, data_lines = "", list[str]()
        elif line.startswith(":"):
            if time.monotonic() - last_data > cfg.timeout:
                raise ProviderError(cfg.name, "timeout", f"no answer: only keep-alives for {cfg.timeout:g}s")
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data_lines.append(line[6:] if line[5:6] == " " else line[5:])
    if data_lines:
        yield event, "\n".join(data_lines)


def _json(cfg: ProviderConfig, data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise ProviderError(cfg.name, "protocol", f"unreadable stream event: {data[:80]!r}") from None
    if not isinstance(value, dict):
        raise ProviderError(cfg.name, "protocol", f"unexpected stream event: {data[:80]!r}")
    return value


async def _openai_chunks(cfg: ProviderConfig, response: httpx.Response) -> AsyncIterator[str | ToolCall]:
    finished = False
    calls = wire.OpenAIToolCalls()
    async for _, data in _sse_data(cfg, response):
        if data.strip() == "[DONE]":
            break
        event = _json(cfg, data)
        if "error" in event:
            raise ProviderError(cfg.name, "upstream", f"error in stream: {_upstream_detail(data.encode())}")
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                yield text
            calls.add(delta.get("tool_calls"))
            if choice.get("finish_reason"):
                finished = True
    if not finished:
        raise ProviderError(cfg.name, "dropped", "the stream ended before the reply was complete")
    for call in calls.calls():
        yield call


async def _anthropic_chunks(cfg: ProviderConfig, response: httpx.Response) -> AsyncIterator[str | ToolCall]:
    calls = wire.AnthropicToolCalls()
    async for event_name, data in _sse_data(cfg, response):
        event = _json(cfg, data)
        kind = event.get("type", event_name)
        if kind == "content_block_start":
            calls.start(int(event.get("index", 0)), event.get("content_block") or {})
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type", "text_delta") == "text_delta" and delta.get("text"):
                yield delta["text"]
            else:
                calls.delta(int(event.get("index", 0)), delta)
        elif kind == "message_stop":
            for call in calls.calls():
                yield call
            return
        elif kind == "error":
            raise ProviderError(cfg.name, "upstream", f"error in stream: {_upstream_detail(data.encode())}")
    raise ProviderError(cfg.name, "dropped", "the stream ended before the reply was complete")


def _parse_complete(cfg: ProviderConfig, body: bytes) -> str:
    try:
        data = json.loads(body)
        if cfg.api_style == "anthropic":
            return "".join(b.get("text", "") for b in data["content"] if b.get("type", "text") == "text")
        return data["choices"][0]["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ProviderError(cfg.name, "protocol", f"unreadable reply: {body[:80]!r}") from None


async def _backoff(cfg: ProviderConfig, err: ProviderError, attempt: int, sleep: Sleep) -> bool:
    """Wait before retry `attempt` (1-based) if the error allows one; False means give up."""
    if not err.retryable or attempt > cfg.max_retries:
        return False
    delay = cfg.backoff_seconds * (2 ** (attempt - 1))
    if err.retry_after is not None:
        if err.retry_after > MAX_RETRY_AFTER_SECONDS:
            return False
        delay = max(delay, err.retry_after)
    await sleep(delay)
    return True


async def stream_chat(
    cfg: ProviderConfig,
    messages: Sequence[Message],
    client: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
    tools: Sequence[Tool] = (),
) -> AsyncGenerator[str | ToolCall, None]:
    """Yield the reply's text chunks as they arrive; raise ProviderError on any failure.

    With `tools`, the model may also ask for tool calls: each arrives whole, as a ToolCall, after the
    text (without tools offered, only text is ever yielded).

    Closing the iterator early (or cancelling the task) closes the upstream connection, which is how
    a client that went away stops the model from generating for nobody.
    """
    own = client is None
    http = client or httpx.AsyncClient()
    url, headers, body = _request(cfg, messages, stream=True, tools=tools)
    parse = _anthropic_chunks if cfg.api_style == "anthropic" else _openai_chunks
    attempt = 0
    try:
        while True:
            attempt += 1
            started = False
            try:
                async with http.stream("POST", url, headers=headers, json=body, timeout=_timeout(cfg)) as resp:
                    if resp.status_code >= 400:
                        raise _status_error(cfg, resp.status_code, resp.headers, await resp.aread())
                    async for chunk in parse(cfg, resp):
                        started = True
                        yield chunk
                    return
            except httpx.HTTPError as err:
                error = _transport_error(cfg, err, started)
                if started or not await _backoff(cfg, error, attempt, sleep):
                    raise error from None
            except ProviderError as error:
                if started or not await _backoff(cfg, error, attempt, sleep):
                    raise
    finally:
        if own:
            await http.aclose()


def completer(
    cfg: ProviderConfig, client: httpx.AsyncClient | None = None
) -> Callable[[list[Message]], Awaitable[str]]:
    """`messages -> reply text` bound to one provider: what the teams' LLM router takes."""

    async def call(messages: list[Message]) -> str:
        return await complete(cfg, messages, client=client)

    return call


async def complete(
    cfg: ProviderConfig,
    messages: Sequence[Message],
    client: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
) -> str:
    """The whole reply from one non-streamed request (retried where safe)."""
    own = client is None
    http = client or httpx.AsyncClient()
    url, headers, body = _request(cfg, messages, stream=False)
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                resp = await http.post(url, headers=headers, json=body, timeout=_timeout(cfg))
                if resp.status_code >= 400:
                    raise _status_error(cfg, resp.status_code, resp.headers, resp.content)
                return _parse_complete(cfg, resp.content)
            except httpx.HTTPError as err:
                error = _transport_error(cfg, err, started=False)
                if not await _backoff(cfg, error, attempt, sleep):
                    raise error from None
            except ProviderError as error:
                if not await _backoff(cfg, error, attempt, sleep):
                    raise
    finally:
        if own:
            await http.aclose()
