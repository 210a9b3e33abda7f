"""The controller task that keeps every template's warm pool at its size.

It plans each pooled template's container (controller.warm_pool.shape.pool_plan) and asks the
runtime's pool to match: create what is missing, remove what no template wants any more (a template
whose image, program, limits or env changed leaves slots of an old shape: they are drained), replace
dead slots. It runs after every claim (refill at once) and otherwise every few seconds; with no
pooled template and no slot left it touches nothing. Runtimes without a pool (Kubernetes, a remote
Docker engine, Podman, a non-root controller) keep no pool; the task then only reports why.
After every pass it writes what it found (size, ready, starting, on or off and why) to the status
file the API and `clawpen get templates` read (controller.warm_pool.status).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.plan import WorkloadPlan
from controller.translate import TranslateError
from controller.warm_pool.shape import pool_plan, pool_sizes, shape
from controller.warm_pool.status import (
    HEARTBEAT_S,
    PODMAN,
    PoolStatus,
    local_engine,
    off_report,
    pool_report,
    save_report,
)

if TYPE_CHECKING:
    from controller.manager import Controller

log = logging.getLogger("clawpen.warm_pool")

INTERVAL_S = 5.0  # between checks when nothing was claimed (slots are started one at a time)


@dataclass
class PoolPlans:
    wanted: dict[str, tuple[WorkloadPlan, int, str]] = field(default_factory=dict)  # shape → (plan, size, template)
    shapes: dict[str, str] = field(default_factory=dict)  # template → shape
    off: dict[str, str] = field(default_factory=dict)  # template → why it has no pool
    sizes: dict[str, int] = field(default_factory=dict)  # template → warmPool


def plan_pools(reconciler: Any) -> PoolPlans:
    """Every template asking for a pool, planned (see PoolPlans)."""
    plans = PoolPlans(sizes=pool_sizes(reconciler.catalog))
    for template, size in plans.sizes.items():
        try:
            plan = pool_plan(
                template,
                reconciler.catalog,
                instance=reconciler.instance,
                image=reconciler.image,
                environ=reconciler.environ,
                variables=reconciler.variables,
                isolation=reconciler.isolation,
            )
        except TranslateError as err:
            log.warning("warm pool for template %s: cannot plan its container: %s", template, err.message)
            plans.off[template] = f"cannot plan its container: {err.message}"
            continue
        if plan is None:
            log.warning("warm pool for template %s: its program takes no config after start; no pool", template)
            plans.off[template] = "its program takes no config after start (only OpenClaw can be pooled)"
            continue
        key = shape(plan)
        previous = plans.wanted.get(key)
        plans.wanted[key] = (plan, size + (previous[1] if previous else 0), template)
        plans.shapes[template] = key
    return plans


def wanted_shapes(reconciler: Any) -> dict[str, tuple[WorkloadPlan, int, str]]:
    """shape → (pool plan, size, template) for every template asking for a pool."""
    return plan_pools(reconciler).wanted


class Reporter:
    """Writes the pool's status file (controller.warm_pool.status) when it changed, or at least every
    HEARTBEAT_S (readers take an old report for a stopped controller); None: no file."""

    def __init__(self, path: Path | None):
        self.path = path
        self._last: dict[str, PoolStatus] | None = None
        self._written = 0.0

    def save(self, report: dict[str, PoolStatus]) -> None:
        if self.path is None or (report == self._last and time.monotonic() - self._written < HEARTBEAT_S):
            return
        try:
            save_report(self.path, report)
        except OSError as err:
            log.warning("warm pool: cannot write %s: %s", self.path, err)
            return
        self._last, self._written = report, time.monotonic()

    async def during(self, work: Any) -> Any:
        """Await `work`, rewriting the last report meanwhile (a refill may build an image for minutes)."""
        job = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({job}, timeout=HEARTBEAT_S / 3)
            if done:
                return job.result()
            if self._last is not None:
                self.save(self._last)


async def warm_pool_task(controller: Controller, status_file: Path | None = None) -> None:
    reporter = Reporter(status_file)
    runtime: Any = controller.runtime
    pool: Any = getattr(runtime, "warm_pool", None)
    off = None
    if pool is None:
        off = getattr(runtime, "warm_pool_off", None) or local_engine(runtime.name)
    elif await asyncio.to_thread(lambda: runtime.is_podman):
        log.info("warm pool: not on Podman (a container's network is fixed at create there)")
        off = PODMAN
    if off is not None:
        while status_file is not None:  # nothing to keep; the report says why (templates may change)
            reporter.save(off_report(pool_sizes(controller.reconciler.catalog), off))
            await asyncio.sleep(INTERVAL_S)
        return
    some = True  # the first pass also drains slots a previous run left behind
    while True:
        plans = plan_pools(controller.reconciler)
        error = None
        if plans.wanted or some:
            reporter.save(pool_report(plans.sizes, plans.shapes, plans.off, pool.last_pass))
            try:
                created, removed = await reporter.during(asyncio.to_thread(pool.refill, plans.wanted))
                if created or removed:
                    log.info("warm pool: %d started, %d removed", created, removed)
                some = bool(plans.wanted)
            except Exception as err:  # noqa: BLE001 - the engine may be away; try again later
                log.warning("warm pool: refill failed: %s", err)
                error = str(err)
        reporter.save(pool_report(plans.sizes, plans.shapes, plans.off, pool.last_pass, error=error))
        deadline = time.monotonic() + INTERVAL_S
        while time.monotonic() < deadline and not pool.claimed.is_set():
            await asyncio.sleep(0.25)
        pool.claimed.clear()
