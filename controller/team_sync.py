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
from typing import TYPE_CHECKING

from controller.resources import Agent, Team
from controller.store.base import NotFound, Store, list_shared
from controller.teams.status import derive_team_status

if TYPE_CHECKING:
    from controller.manager import Controller

log = logging.getLogger("clawpen.teams")


async def sync_team_statuses(store: Store) -> int:
    """Re-derive every team's status; returns how many were written."""
    # Read only (derive_team_status is pure): shared objects, not validated again every period.
    teams = await list_shared(store, Team)
    if not teams:
        return 0
    agents = await list_shared(store, Agent)
    written = 0
    for team in teams:
        status = derive_team_status(team, agents)
        if team.status is None or team.status.model_dump() != status.model_dump():
            with contextlib.suppress(NotFound):
                await store.update_status(Team, team.name, status, team.metadata.namespace)
                written += 1
    return written


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
