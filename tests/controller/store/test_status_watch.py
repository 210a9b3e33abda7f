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
from controller.store.base import WatchEvent
from controller.store.files import FileStore


@pytest.fixture(params=["inotify", "poll"])
async def wstore(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FileStore]:
    monkeypatch.setattr(filewatch, "SAFETY_RESCAN_SECONDS", 3600.0)
    s = FileStore(home, watch_mode=request.param, poll_interval=0.05)
    yield s
    await s.close()


async def _until(events: AsyncIterator[WatchEvent], want: str) -> list[str]:
    seen = []
    while not seen or seen[-1] != want:
        seen.append((await next_event(events)).type)
    return seen


async def test_status_writes_are_modified_events(wstore: FileStore) -> None:
    events = wstore.watch(Agent, status=True)
    await wstore.create(agent("finn"))
    # The spec file's ADDED, and the state record's creation as a MODIFIED (in either order).
    assert sorted([(await next_event(events)).type for _ in range(2)]) == ["ADDED", "MODIFIED"]
    await wstore.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    modified = await next_event(events)
    assert (modified.type, modified.name) == ("MODIFIED", "finn")
    got = await wstore.get(Agent, "finn")
    assert got.status is not None and got.status.phase == Phase.RUNNING

    await wstore.delete(Agent, "finn")
    assert "DELETED" in await _until(events, "DELETED")


async def test_creation_and_first_status_in_one_rescan_still_reach_the_watcher(wstore: FileStore) -> None:
    """A state record created and written between two rescans looks "ADDED" to the directory diff;
    it must still be reported (it carries the status), not dropped as a birth."""
    events = wstore.watch(Agent, status=True)
    await wstore.create(agent("finn"))
    await wstore.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    types = [(await next_event(events)).type, (await next_event(events)).type]
    assert "MODIFIED" in types and all(e == "ADDED" or e == "MODIFIED" for e in types)


async def test_status_written_by_another_store_instance_arrives(wstore: FileStore, home: Path) -> None:
    events = wstore.watch(Agent, status=True)
    await wstore.create(agent("finn"))
    assert sorted([(await next_event(events)).type for _ in range(2)]) == ["ADDED", "MODIFIED"]
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
    assert sorted([(await next_event(loud)).type for _ in range(2)]) == ["ADDED", "MODIFIED"]
    await wstore.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    assert (await next_event(loud)).type == "MODIFIED"
    await wstore.create(agent("marker"))
    assert [e.name for e in await event_for(quiet, "marker")] == ["marker"]
