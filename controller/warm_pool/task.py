"""The controller task that keeps every template's warm pool at its size.

It plans each pooled template's container (controller.warm_pool.shape.pool_plan) and asks the
runtime's pool to match: create what is missing, remove what no template wants any more (a template
whose image, program, limits or env changed leaves slots of an old shape: they are drained), replace
dead slots. It runs after every claim (refill at once) and otherwise every few seconds; with no
pooled template and no slot left it touches nothing. Runtimes without a pool (Kubernetes, a remote
Docker engine, Podman, a non-root controller) never start it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from controller.plan import WorkloadPlan
from controller.translate import TranslateError
from controller.warm_pool.shape import pool_plan, pool_sizes, shape

if TYPE_CHECKING:
    from controller.manager import Controller

log = logging.getLogger("clawpen.warm_pool")

INTERVAL_S = 5.0  # between checks when nothing was claimed (slots are started one at a time)


def wanted_shapes(reconciler: Any) -> dict[str, tuple[WorkloadPlan, int, str]]:
    """shape → (pool plan, size, template) for every template asking for a pool."""
    wanted: dict[str, tuple[WorkloadPlan, int, str]] = {}
    for template, size in pool_sizes(reconciler.catalog).items():
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
            continue
        if plan is None:
            log.warning("warm pool for template %s: its program takes no config after start; no pool", template)
            continue
        key = shape(plan)
        previous = wanted.get(key)
        wanted[key] = (plan, size + (previous[1] if previous else 0), template)
    return wanted


async def warm_pool_task(controller: Controller) -> None:
    pool = getattr(controller.runtime, "warm_pool", None)
    if pool is None:
        return
    if await asyncio.to_thread(lambda: controller.runtime.is_podman):  # type: ignore[attr-defined]
        log.info("warm pool: not on Podman (a container's network is fixed at create there)")
        return
    some = True  # the first pass also drains slots a previous run left behind
    while True:
        wanted = wanted_shapes(controller.reconciler)
        if wanted or some:
            try:
                created, removed = await asyncio.to_thread(pool.refill, wanted)
                if created or removed:
                    log.info("warm pool: %d started, %d removed", created, removed)
                some = bool(wanted)
            except Exception as err:  # noqa: BLE001 - the engine may be away; try again later
                log.warning("warm pool: refill failed: %s", err)
        deadline = time.monotonic() + INTERVAL_S
        while time.monotonic() < deadline and not pool.claimed.is_set():
            await asyncio.sleep(0.25)
        pool.claimed.clear()
