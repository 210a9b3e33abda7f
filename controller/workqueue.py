"""A work queue keyed by resource, in the manner of client-go's workqueue.

Why not a plain asyncio.Queue: events for one agent arrive in bursts (a spec write, then Docker's
die/destroy/start), and reconcile is level-triggered, so N events for a key need one reconcile.
The queue dedupes pending keys, never hands out a key that is being processed (it is marked dirty
and comes back once the worker is done), delays retries with per-key exponential backoff, and
supports "look again in N seconds".
"""

from __future__ import annotations

import asyncio


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.25, max_delay: float = 60.0):
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: set[str] = set()  # in the queue, not yet handed out
        self._processing: set[str] = set()
        self._dirty: set[str] = set()  # added while processing
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._shutdown = False

    def add(self, key: str) -> None:
        if self._shutdown:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._pending:
            return
        self._pending.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        """Add the key after `delay` seconds (an earlier pending timer for the key wins)."""
        if self._shutdown:
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        due = loop.time() + delay
        if existing is not None and existing.when() <= due:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> float:
        """Retry after an error: 0.25 s, 0.5 s, 1 s ... capped; returns the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self._base_delay * (2**failures), self._max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str:
        key = await self._queue.get()
        self._pending.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._pending)

    def shutdown(self) -> None:
        self._shutdown = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
