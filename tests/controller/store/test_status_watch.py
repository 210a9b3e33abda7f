"""FileStore.watch(status=True): status writes arrive as MODIFIED, from this process or another store.

The dashboard's watch needs the phase changes the controller writes; the controller's own watch
(status=False, the default) must still not be woken by them (test_filewatch covers that side).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_helpers import agent, event_for, next_event

from controller.resources import Agent, AgentStatus, Phase
from controller.store import filewatch
from controller.store.files import FileStore


@pytest.fixture(params=["inotify", "poll"])
async def wstore(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FileStore]:
    monkeypatch.setattr(filewatch, "SAFETY_RESCAN_SECONDS", 3600.0)
    s = FileStore(home, watch_mode=request.param, poll_interval=0.05)
    yield s
    await s.close()


async def test_status_writes_are_modified_events(wstore: FileStore) -> None:
    events = wstore.watch(Agent, status=True)
    await wstore.create(agent("finn"))
    added = await next_event(events)
    assert (added.type, added.name) == ("ADDED", "finn")
    # The state record of a new object is its birth, already reported: no second event for it.
    await wstore.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    modified = await next_event(events)
    assert (modified.type, modified.name) == ("MODIFIED", "finn")
    got = await wstore.get(Agent, "finn")
    assert got.status is not None and got.status.phase == Phase.RUNNING

    await wstore.delete(Agent, "finn")
    assert [e.type for e in await event_for(events, "finn")] == ["DELETED"]


async def test_status_written_by_another_store_instance_arrives(wstore: FileStore, home: Path) -> None:
    events = wstore.watch(Agent, status=True)
    await wstore.create(agent("finn"))
    assert (await next_event(events)).type == "ADDED"
    other = FileStore(home)  # e.g. the controller in another process than the gateway
    try:
        await other.update_status(Agent, "finn", AgentStatus(phase=Phase.FAILED, message="boom"))
    finally:
        await other.close()
    assert (await next_event(events)).type == "MODIFIED"


async def test_without_status_the_same_writes_stay_silent(wstore: FileStore) -> None:
    quiet = wstore.watch(Agent)
    loud = wstore.watch(Agent, status=True)
    await wstore.create(agent("finn"))
    assert (await next_event(quiet)).type == "ADDED"
    assert (await next_event(loud)).type == "ADDED"
    await wstore.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    assert (await next_event(loud)).type == "MODIFIED"
    await wstore.create(agent("marker"))
    assert [e.name for e in await event_for(quiet, "marker")] == ["marker"]
