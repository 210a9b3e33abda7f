"""FileStore.watch on a real directory, through real inotify and through polling.

Every test waits for events with a generous timeout and never sleeps to "let things settle":
absence of an event is shown by a later marker change arriving first.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_helpers import agent, event_for, manifest, next_event

from controller.resources import Agent, AgentStatus, Phase, Team
from controller.store import filewatch
from controller.store.files import FileStore

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["inotify", "poll"])
async def wstore(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FileStore]:
    # No periodic safety rescan: in inotify mode only the kernel's events can deliver a change.
    monkeypatch.setattr(filewatch, "SAFETY_RESCAN_SECONDS", 3600.0)
    s = FileStore(home, watch_mode=request.param, poll_interval=0.05)
    yield s
    await s.close()


def spec_file(home: Path, name: str) -> Path:
    return home / "agents" / f"{name}.yaml"


async def test_store_writes_produce_events_but_status_writes_do_not(wstore: FileStore) -> None:
    events = wstore.watch(Agent)
    await wstore.create(agent("finn", model="a"))
    assert (await next_event(events)).type == "ADDED"

    await wstore.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    await wstore.replace(agent("finn", model="b"))
    modified = await next_event(events)
    assert (modified.type, modified.kind, modified.key) == ("MODIFIED", "Agent", "default/finn")

    await wstore.update_status(Agent, "finn", AgentStatus(phase=Phase.STOPPED))
    await wstore.create(agent("marker"))
    assert [e.name for e in await event_for(events, "marker")] == ["marker"]

    await wstore.delete(Agent, "finn")
    deleted = await next_event(events)
    assert (deleted.type, deleted.name) == ("DELETED", "finn")


async def test_hand_edit_is_seen_without_restart(wstore: FileStore, home: Path) -> None:
    await wstore.create(agent("finn", provider="openai", model="a"))
    events = wstore.watch(Agent)
    spec_file(home, "finn").write_text(manifest("finn", model="by-hand"))
    event = await next_event(events)
    assert (event.type, event.name) == ("MODIFIED", "finn")
    got = await wstore.get(Agent, "finn")
    assert got.spec.model == "by-hand" and got.metadata.generation == 2


async def test_successive_edits_each_arrive(wstore: FileStore, home: Path) -> None:
    events = wstore.watch(Agent)
    spec_file(home, "finn").write_text(manifest("finn", model="v0"))
    assert (await next_event(events)).type == "ADDED"  # from here on the kernel watch is in place
    assert (await wstore.get(Agent, "finn")).metadata.generation == 1  # adopted on first read
    for version in range(1, 4):
        spec_file(home, "finn").write_text(manifest("finn", model=f"v{version}"))
        event = await next_event(events)
        assert (event.type, event.name) == ("MODIFIED", "finn")
        assert (await wstore.get(Agent, "finn")).metadata.generation == version + 1
    watcher = wstore._watchers["Agent"]
    assert watcher.active_mode == wstore.watch_mode


async def test_a_burst_of_edits_ends_with_the_last_version_seen(wstore: FileStore, home: Path) -> None:
    await wstore.create(agent("finn", provider="openai", model="v0"))
    events = wstore.watch(Agent)
    for version in range(1, 31):
        spec_file(home, "finn").write_text(manifest("finn", model=f"v{version}"))
    while True:  # events may be coalesced, but one must come after the last write
        event = await next_event(events)
        # In-place writes in a tight loop may be caught truncated (BROKEN); the end state is what counts.
        assert (event.type, event.name) in {("MODIFIED", "finn"), ("BROKEN", "finn")}
        if (await wstore.get(Agent, "finn")).spec.model == "v30":
            break


async def test_rewrite_with_identical_bytes_is_not_an_event(wstore: FileStore, home: Path) -> None:
    spec_file(home, "finn").write_text(manifest("finn"))
    events = wstore.watch(Agent)
    spec_file(home, "finn").write_text(manifest("finn"))  # touched, same content
    spec_file(home, "marker").write_text(manifest("marker"))
    assert [e.name for e in await event_for(events, "marker")] == ["marker"]


async def test_git_style_rename_into_place(wstore: FileStore, home: Path) -> None:
    await wstore.create(agent("finn", provider="openai", model="a"))
    events = wstore.watch(Agent)
    # git and many editors write elsewhere and rename over the target.
    staged = home / "agents" / ".finn.yaml.lock"
    staged.write_text(manifest("finn", model="pulled"))
    os.replace(staged, spec_file(home, "finn"))
    event = await next_event(events)
    assert (event.type, event.name) == ("MODIFIED", "finn")
    assert (await wstore.get(Agent, "finn")).spec.model == "pulled"

    outside = home / "incoming.yaml"
    outside.write_text(manifest("nova"))
    os.rename(outside, spec_file(home, "nova"))
    event = await next_event(events)
    assert (event.type, event.name) == ("ADDED", "nova")


async def test_editor_scratch_files_are_ignored(wstore: FileStore, home: Path) -> None:
    events = wstore.watch(Agent)
    (home / "agents" / ".finn.yaml.swp").write_text("vim swap")
    (home / "agents" / "finn.yaml~").write_text("backup")
    (home / "agents" / "notes.txt").write_text("not a manifest")
    spec_file(home, "marker").write_text(manifest("marker"))
    assert [e.name for e in await event_for(events, "marker")] == ["marker"]


async def test_corrupt_edit_is_broken_then_fixed_is_modified(wstore: FileStore, home: Path) -> None:
    await wstore.create(agent("finn", provider="openai", model="a"))
    await wstore.create(agent("other"))
    events = wstore.watch(Agent)
    spec_file(home, "finn").write_text("spec: [unclosed\n")
    event = await next_event(events)
    assert (event.type, event.name) == ("BROKEN", "finn")
    assert [a.name for a in await wstore.list(Agent)] == ["other"]

    spec_file(home, "new").write_text(manifest("new", extra="  resources: {cpu: 0}\n"))
    event = await next_event(events)
    assert (event.type, event.name) == ("BROKEN", "new")

    spec_file(home, "finn").write_text(manifest("finn", model="fixed"))
    event = await next_event(events)
    assert (event.type, event.name) == ("MODIFIED", "finn")
    assert (await wstore.get(Agent, "finn")).spec.model == "fixed"


async def test_hand_delete_is_deleted(wstore: FileStore, home: Path) -> None:
    await wstore.create(agent("finn"))
    events = wstore.watch(Agent)
    spec_file(home, "finn").unlink()
    event = await next_event(events)
    assert (event.type, event.name) == ("DELETED", "finn")


async def test_directory_replaced_behind_our_back(wstore: FileStore, home: Path) -> None:
    await wstore.create(agent("finn"))
    events = wstore.watch(Agent)
    shutil.rmtree(home / "agents")
    event = await next_event(events)
    assert (event.type, event.name) == ("DELETED", "finn")
    (home / "agents").mkdir(exist_ok=True)  # the watcher may have recreated it already
    spec_file(home, "nova").write_text(manifest("nova"))
    event = await next_event(events)  # the new directory is watched (no safety rescan here)
    assert (event.type, event.name) == ("ADDED", "nova")


async def test_every_watcher_gets_every_event(wstore: FileStore) -> None:
    first, second, third = wstore.watch(Agent), wstore.watch(Agent), wstore.watch(Agent)
    await wstore.create(agent("finn"))
    for events in (first, second, third):
        event = await next_event(events)
        assert (event.type, event.name) == ("ADDED", "finn")
    await second.aclose()  # type: ignore[attr-defined]  # one consumer leaving does not stop the others
    await wstore.delete(Agent, "finn")
    for events in (first, third):
        assert (await next_event(events)).type == "DELETED"


async def test_team_watch_sees_only_teams(wstore: FileStore, home: Path) -> None:
    teams = wstore.watch(Team)
    await wstore.create(agent("finn"))
    (home / "teams" / "finance.yaml").write_text(
        "apiVersion: clawpen.dev/v1alpha1\nkind: Team\nmetadata: {name: finance}\nspec: {}\n"
    )
    event = await next_event(teams)
    assert (event.kind, event.name, event.type) == ("Team", "finance", "ADDED")


async def test_watcher_sees_writes_from_another_process(wstore: FileStore, home: Path) -> None:
    events = wstore.watch(Agent)
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from controller.resources import Agent, AgentSpec, ObjectMeta
        from controller.store.files import FileStore

        async def main():
            store = FileStore(Path(sys.argv[1]))
            await store.create(Agent(metadata=ObjectMeta(name="remote"), spec=AgentSpec(model="m")))
            await store.close()

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", script, str(home)], check=True, env=env, timeout=60)
    event = await next_event(events)
    assert (event.type, event.name) == ("ADDED", "remote")
    assert (await wstore.get(Agent, "remote")).spec.model == "m"


async def test_abandoned_iterators_stop_receiving(wstore: FileStore) -> None:
    kept = wstore.watch(Agent)
    for _ in range(3):
        wstore.watch(Agent)  # dropped at once, never iterated: must not keep a queue filling up
    gc.collect()
    await wstore.create(agent("finn"))
    assert (await next_event(kept)).name == "finn"
    assert len(wstore._watchers["Agent"]._subscribers) == 1


async def test_close_ends_the_iterators(wstore: FileStore) -> None:
    events = wstore.watch(Agent)
    await wstore.close()
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


def test_clawpen_watch_poll_forces_polling(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWPEN_WATCH", "poll")
    assert FileStore(home, watch_mode="inotify").watch_mode == "poll"
    monkeypatch.delenv("CLAWPEN_WATCH")
    assert FileStore(home).watch_mode == "auto"
    with pytest.raises(ValueError, match="watch_mode"):
        FileStore(home, watch_mode="fast")  # type: ignore[arg-type]
