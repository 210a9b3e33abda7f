"""The local control loop: feeds the work queue and runs reconcile workers.

Three sources feed the queue, and any one of them alone would eventually converge: store watch
events (spec written by the CLI, the gateway, an editor or `git pull`), runtime events (a
container died, was OOM-killed or removed behind our back) and a periodic resync that lists
everything — including containers whose Agent is gone (orphans) — so nothing depends on an
event not being missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from controller.reconcile import Reconciler, ReconcileRetry, settled_fingerprint
from controller.resources import Agent
from controller.runtime.base import Observed, Runtime, RuntimeError_
from controller.store.base import Store, list_shared
from controller.workqueue import WorkQueue

log = logging.getLogger("clawpen.controller")

Hook = Callable[[str, str, float], None]  # (key, result, seconds): metrics
FULL_RESYNC_EVERY = 10  # every 10th periodic resync queues settled agents too (belt and braces)


class Controller:
    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        reconciler: Reconciler,
        *,
        workers: int = 4,
        resync_seconds: float = 120.0,
        on_reconcile: Hook | None = None,
        extra_tasks: list[Callable[[Controller], Coroutine[Any, Any, None]]] | None = None,
    ):
        self.store, self.runtime, self.reconciler = store, runtime, reconciler
        self.queue = WorkQueue()
        self.workers = workers
        self.resync_seconds = resync_seconds
        self.on_reconcile = on_reconcile
        self.extra_tasks = extra_tasks or []
        self.reconcile_count = 0
        self.ready = asyncio.Event()  # set after the first full listing was queued

    async def run(self) -> None:
        """Run until cancelled."""
        tasks = [asyncio.create_task(self._worker(i), name=f"reconcile-worker-{i}") for i in range(self.workers)]
        tasks.append(asyncio.create_task(self._watch_store(), name="watch-store"))
        tasks.append(asyncio.create_task(self._watch_runtime(), name="watch-runtime"))
        tasks.append(asyncio.create_task(self._resync_forever(), name="resync"))
        tasks += [asyncio.create_task(extra(self)) for extra in self.extra_tasks]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def resync(self, *, skip_settled: bool = False) -> int:
        """Queue every agent we know of: specs, broken specs, and what the runtime owns.

        With `skip_settled` (the periodic safety net), an agent whose object (resourceVersion) and
        container (id, state, start, plan) are exactly as its last reconcile left them is not queued:
        nothing an event could have been missed for has changed, and at 200 idle agents those
        no-op reconciles were most of the controller's idle CPU. Timed work (re-probes, idle
        suspension, retries) has its own requeue. Secret changes and runtime reconnects queue all."""
        keys: set[str] = set()
        agents = await list_shared(self.store, Agent)
        keys.update(f"{b.namespace}/{b.name}" for b in await self.store.list_broken(Agent))
        owned: dict[str, Observed] | None = None
        try:
            owned = {o.key: o for o in await self.runtime.list_owned()}
            keys.update(owned)
        except RuntimeError_ as err:
            log.warning("runtime unavailable during resync: %s", err)
        settled = self.reconciler.settled
        for agent in agents:
            if (
                skip_settled
                and owned is not None
                and settled.get(agent.key) == settled_fingerprint(agent.metadata.resource_version, owned.get(agent.key))
            ):
                keys.discard(agent.key)
                continue
            keys.add(agent.key)
        keys.update(self.reconciler.stale_registrations({a.key for a in agents} | keys))
        for key in sorted(keys):
            self.queue.add(key)
        return len(keys)

    async def _resync_forever(self) -> None:
        passes = 0
        while True:
            try:
                await self.resync(skip_settled=passes % FULL_RESYNC_EVERY != 0)  # the first one: everything
                passes += 1
                self.ready.set()
            except Exception:  # noqa: BLE001 - a failed listing is retried at the next resync
                log.exception("resync failed")
            await asyncio.sleep(self.resync_seconds)

    async def _watch_store(self) -> None:
        while True:
            try:
                async for event in self.store.watch(Agent):
                    self.queue.add(event.key)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a watch that breaks is re-established
                log.exception("store watch failed; re-watching in 1 s")
                await asyncio.sleep(1.0)

    async def _watch_runtime(self) -> None:
        delay = 1.0
        while True:
            try:
                async for event in self.runtime.events():
                    delay = 1.0
                    self.queue.add(event.key)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - runtime down: resync still converges later
                log.warning("runtime events unavailable (%s); retrying in %.0f s", err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            with contextlib.suppress(Exception):  # events may have been missed: look at everything now
                await self.resync()

    async def _worker(self, index: int) -> None:
        while True:
            key = await self.queue.get()
            started = time.perf_counter()
            outcome = "ok"
            try:
                result = await self.reconciler.reconcile(key)
                self.queue.forget(key)
                if result.requeue_after is not None:
                    self.queue.add_after(key, result.requeue_after)
                outcome = result.action
            except ReconcileRetry as err:
                delay = self.queue.add_rate_limited(key)
                log.info("reconcile %s: %s; retry in %.2f s", key, err, delay)
                outcome = "retry"
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one agent's bug never stops the others
                delay = self.queue.add_rate_limited(key)
                log.exception("reconcile %s failed; retry in %.2f s", key, delay)
                outcome = "error"
            finally:
                self.queue.done(key)
            self.reconcile_count += 1
            if self.on_reconcile:
                self.on_reconcile(key, outcome, time.perf_counter() - started)
