"""GET /api/watch: the fleet as a stream of changes (Server-Sent Events), for the dashboard and `get -w`.

    GET /api/watch?kinds=agents,teams        Authorization: Bearer <token>   [Last-Event-ID: <id>]

The stream opens with every current object as an `ADDED` event, then a `SYNCED` event (the initial
list is complete; a resumed stream replays only what was missed before it), then one
`ADDED|MODIFIED|DELETED` event per change, each carrying the object exactly as
GET /api/agents/{id} (or /api/teams/{id}) renders it, plus its resourceVersion:

    id: 3f2a9c1e-42
    event: MODIFIED
    data: {"type": "MODIFIED", "kind": "agents", "name": "finn", "object": {...}, "resourceVersion": "57"}

A comment line (`: ping`) every `heartbeat` seconds (default 15) keeps proxies from closing an idle
stream. Reconnect with the last `id` in `Last-Event-ID` to get only what was missed; when that is
no longer possible (the gateway restarted, or too much happened) the stream starts with a `RESET`
event and a full snapshot. Bearer tokens only (like every /api route),
so a browser reads it with fetch() rather than EventSource, which cannot send the header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from api.errors import invalid
from api.openapi import Operation, Query, operation
from api.watch import KINDS, Event, WatchHub, hub_for

TAGS = ("watch",)
DEFAULT_HEARTBEAT = 15.0


def _frame(event: str, data: object, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _event(hub: WatchHub, event: Event) -> bytes:
    return _frame(event.type, event.payload(), hub.event_id(event.seq))


def _kinds(request: Request) -> frozenset[str]:
    raw = request.query_params.get("kinds", ",".join(KINDS))
    kinds = frozenset(k.strip() for k in raw.split(",") if k.strip())
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        raise invalid([{"field": "kinds", "message": f"comma-separated list of {', '.join(KINDS)}"}])
    return kinds


def _heartbeat(request: Request) -> float:
    raw = request.query_params.get("heartbeat")
    if raw is None:
        return DEFAULT_HEARTBEAT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 300:
        raise invalid([{"field": "heartbeat", "message": "seconds, between 0.1 and 300"}])
    return value


@operation(
    Operation(
        "Watch agents and teams: the current objects, then every change (text/event-stream)",
        response=str,
        media_type="text/event-stream",
        errors=(422,),
        query=(
            Query("kinds", {"type": "string"}, "comma-separated: agents,teams (default both)"),
            Query("heartbeat", {"type": "number"}, "seconds between keep-alive comments, default 15"),
        ),
        tags=TAGS,
    )
)
async def watch(request: Request) -> StreamingResponse:
    kinds = _kinds(request)
    heartbeat = _heartbeat(request)
    hub = hub_for(request)
    sub = await hub.subscribe(kinds, request.headers.get("last-event-id"))

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            if sub.reset:
                yield _frame("RESET", {"type": "RESET", "reason": "cannot resume from that id"}, hub.event_id(sub.seq))
            for initial in sub.initial:
                yield _event(hub, initial)
            yield _frame("SYNCED", {"type": "SYNCED", "resumed": sub.resumed}, hub.event_id(sub.seq))
            while True:
                try:
                    async with asyncio.timeout(heartbeat):
                        event = await sub.queue.get()
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if event is None:
                    return  # the hub closed or dropped this client: it reconnects and resumes
                yield _event(hub, event)
        finally:
            hub.unsubscribe(sub)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_closing(stream()), media_type="text/event-stream", headers=headers)


async def _closing(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Make sure the generator's `finally` runs when Starlette stops iterating (client gone)."""
    try:
        async for chunk in source:
            yield chunk
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


ROUTES = [
    Route("/api/watch", watch, methods=["GET"]),
]
