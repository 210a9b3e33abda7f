"""The /api/metrics summary, gathered once for everyone and kept a few seconds.

A dashboard polling every second, or many clients at once, would otherwise each fan out one stats
call per running agent. Callers within `ttl` seconds get the last summary; callers that arrive while
one is being gathered wait for that same gathering (single flight) instead of starting another; a
summary younger than `stale` is answered at once while the next one is gathered in the background
(the engine answers a stats call only at its next 1 s collection tick), so only the first call waits.
The gathering itself is bounded: per-agent calls run on the runtime's own small pool, and whatever
has not answered by `deadline` is left out of this summary rather than holding the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

USAGE_TTL_SECONDS = 3.0
USAGE_STALE_SECONDS = 30.0  # past the TTL, a summary this young is served while a fresh one is gathered
USAGE_DEADLINE_SECONDS = 3.0


class UsageCache:
    def __init__(self, ttl: float = USAGE_TTL_SECONDS, stale: float = USAGE_STALE_SECONDS):
        self.ttl = ttl
        self.stale = stale
        self._value: dict[str, Any] | None = None
        self._at = 0.0
        self._flight: asyncio.Future[dict[str, Any]] | None = None

    async def get(self, gather: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        age = time.monotonic() - self._at
        if self._value is not None and age < self.ttl:
            return self._value
        if self._flight is None or self._flight.done():
            self._flight = asyncio.ensure_future(self._refresh(gather))
            self._flight.add_done_callback(_consume)
        if self._value is not None and age < self.stale:
            return self._value
        return await asyncio.shield(self._flight)

    async def _refresh(self, gather: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        value = await gather()
        self._value, self._at = value, time.monotonic()
        return value


async def within(deadline: float, calls: list[Awaitable[Any]]) -> list[Any]:
    """Run `calls` concurrently; results of those done by `deadline` (others are cancelled, omitted).

    An exception a call raised is returned in its place, for the caller to judge.
    """
    tasks = [asyncio.ensure_future(call) for call in calls]
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    return [task.exception() or task.result() for task in tasks if task in done]


def _consume(flight: asyncio.Future[Any]) -> None:
    """A background refresh nobody awaited must not log "exception was never retrieved"."""
    if not flight.cancelled():
        flight.exception()
