"""Keeps each stored Team's status in line with the Agents it routes to.

A team's status depends on other objects (its agents' phases), and agent status writes produce no
store events by design, so besides reacting to Team events this task re-derives every team on a
short period. derive_team_status is pure and writes happen only on change, so this is cheap and
idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from controller.resources import Agent, Team, TeamStatus
from controller.store.base import InvalidObject, NotFound, Store, list_shared
from controller.teams.status import derive_team_status, invalid_team_status

if TYPE_CHECKING:
    from controller.manager import Controller

log = logging.getLogger("clawpen.teams")

TeamReport = Callable[[str, str, TeamStatus, "str | None"], None]  # (namespace, name, status, router problem)


async def sync_team_statuses(
    store: Store, report: TeamReport | None = None, router_check: Callable[[Team], str | None] | None = None
) -> int:
    """Re-derive every team's status; returns how many were written.

    `report(namespace, name, status)` sees every team's status on every pass (the operator turns
    changes into Kubernetes Events), with what `router_check` finds wrong in its router's
    configuration (such a team routes by keywords instead). A Team whose spec does not parse (a routing entry naming an
    unknown intent, which the CRD schema cannot express) is Failed with the reason instead of being
    skipped without a word."""
    # Read only (derive_team_status is pure): shared objects, not validated again every period.
    teams = await list_shared(store, Team)
    broken = await store.list_broken(Team)
    if not teams and not broken:
        return 0
    agents = await list_shared(store, Agent) if teams else []
    written = 0
    for team in teams:
        status = derive_team_status(team, agents)
        if team.status is None or team.status.model_dump() != status.model_dump():
            with contextlib.suppress(NotFound):
                await store.update_status(Team, team.name, status, team.metadata.namespace)
                written += 1
        if report is not None:
            problem = router_check(team) if router_check is not None else None
            report(team.metadata.namespace, team.name, status, problem)
    for bad in broken:
        previous = await _stored_status(store, bad.name, bad.namespace)
        status = invalid_team_status(bad.error, previous)
        if previous is None or previous.model_dump() != status.model_dump():
            with contextlib.suppress(NotFound, InvalidObject):  # written; only reading it back fails
                await store.update_status(Team, bad.name, status, bad.namespace)
            written += 1
        if report is not None:
            report(bad.namespace, bad.name, status, None)
    return written


async def _stored_status(store: Store, name: str, namespace: str) -> TeamStatus | None:
    get_status = getattr(store, "get_status", None)  # both stores have it; not in the Store protocol
    if get_status is None:
        return None
    with contextlib.suppress(NotFound):
        found = await get_status(Team, name, namespace)
        return found if isinstance(found, TeamStatus) else None
    return None


async def team_status_task(controller: Controller, period: float = 2.0) -> None:
    """Controller extra task: on Team events and every `period` seconds."""
    wake = asyncio.Event()

    async def watch() -> None:
        while True:
            try:
                async for _ in controller.store.watch(Team):
                    wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - re-watch; the period still converges
                log.exception("team watch failed")
                await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch())
    try:
        while True:
            try:
                await sync_team_statuses(controller.store)
            except Exception:  # noqa: BLE001 - one bad pass never stops the loop
                log.exception("team status sync failed")
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=period)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
