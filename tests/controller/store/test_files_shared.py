"""list_shared(): validated objects reused, and never one that is stale.

Run with the inotify change feed and without it (CLAWPEN_WATCH=poll's path: every file stat()ed),
each change is made by a different hand — the store's API, another store on the same directory (as
another process would), plain file writes behind the store's back, one that only ctime can tell —
and the very next list must show it, with no sleep in between.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_helpers import agent, manifest

from controller.resources import Agent, AgentStatus, Phase
from controller.store.files import FileStore
from controller.store.inotify import ChangeFeed

MODES = ["inotify", "poll"]


@pytest.fixture(params=MODES)
async def shared_store(request: pytest.FixtureRequest, home: Path) -> AsyncIterator[FileStore]:
    s = FileStore(home, watch_mode="poll" if request.param == "poll" else "auto")
    yield s
    await s.close()


def spec_file(home: Path, name: str) -> Path:
    return home / "agents" / f"{name}.yaml"


async def models(store: FileStore) -> dict[str, str]:
    return {a.name: a.spec.model for a in await store.list_shared(Agent)}


async def test_every_change_is_seen_by_the_next_list(shared_store: FileStore, home: Path) -> None:
    store = shared_store
    await store.create(agent("ada", model="m1"))
    await store.create(agent("bob", model="m1"))
    assert await models(store) == {"ada": "m1", "bob": "m1"}

    await store.replace(agent("ada", model="m2"))  # an API write
    assert await models(store) == {"ada": "m2", "bob": "m1"}

    await store.update_status(Agent, "bob", AgentStatus(phase=Phase.RUNNING, message="one"))  # a status write
    bob = next(a for a in await store.list_shared(Agent) if a.name == "bob")
    assert bob.status is not None and bob.status.message == "one"

    other = FileStore(home)  # another writer on the same directory, as the CLI would be
    await other.update_status(Agent, "bob", AgentStatus(phase=Phase.RUNNING, message="two"))
    await other.replace(agent("ada", model="m3"))
    await other.close()
    listed = {a.name: a for a in await store.list_shared(Agent)}
    assert listed["ada"].spec.model == "m3"
    assert listed["bob"].status is not None and listed["bob"].status.message == "two"

    # In place, same size, mtime put back: only ctime moves.
    path = spec_file(home, "ada")
    old = path.stat()
    with open(path, "r+") as handle:
        handle.write(path.read_text().replace("m3", "m4"))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert path.stat().st_size == old.st_size
    ada = next(a for a in await store.list_shared(Agent) if a.name == "ada")
    assert ada.spec.model == "m4" and ada.metadata.generation == 4

    spec_file(home, "bob").unlink()  # a hand delete
    assert await models(store) == {"ada": "m4"}
    spec_file(home, "cy").write_text(manifest("cy", model="m5"))  # a hand-written file
    assert await models(store) == {"ada": "m4", "cy": "m5"}
    spec_file(home, "cy").write_text("kind: [not, a, manifest")  # broken: left out, as by list()
    assert await models(store) == {"ada": "m4"}
    spec_file(home, "cy").write_text(manifest("cy", model="m6"))  # fixed
    assert await models(store) == {"ada": "m4", "cy": "m6"}

    first_uid = next(a for a in await store.list_shared(Agent) if a.name == "ada").metadata.uid
    await store.delete(Agent, "ada")  # deleted and created again: a new object
    await store.create(agent("ada", model="m7"))
    again = next(a for a in await store.list_shared(Agent) if a.name == "ada")
    assert again.spec.model == "m7" and again.metadata.uid != first_uid
    assert await models(store) == {a.name: a.spec.model for a in await store.list(Agent)}


async def test_an_unchanged_list_is_not_validated_again(shared_store: FileStore) -> None:
    store = shared_store
    for i in range(5):
        await store.create(agent(f"a{i}", model="m"))
    first = await store.list_shared(Agent)
    await store.list_shared(Agent)  # state files adopted or written on the first read settle here
    builds = store._views._shared(Agent).builds
    again = await store.list_shared(Agent)
    assert [a.metadata.resource_version for a in again] == [a.metadata.resource_version for a in first]
    assert all(x is y for x, y in zip(again, first, strict=True))  # the very same objects
    assert store._views._shared(Agent).builds == builds
    await store.update_status(Agent, "a3", AgentStatus(phase=Phase.RUNNING))
    changed = await store.list_shared(Agent)
    assert store._views._shared(Agent).builds == builds + 1  # only the changed one is built
    assert changed[3].status is not None and changed[3].status.phase == Phase.RUNNING
    assert changed[2] is first[2]


async def test_lists_keep_up_with_another_writer(shared_store: FileStore, home: Path) -> None:
    """Read-your-writes across two stores, 60 rounds: a write that returned is in the next list."""
    store = shared_store
    writer = FileStore(home)
    await writer.create(agent("ada", model="m"))
    try:
        for i in range(60):
            if i % 2:
                await writer.update_status(Agent, "ada", AgentStatus(phase=Phase.RUNNING, message=str(i)))
            else:
                await writer.replace(agent("ada", model=f"m{i}"))
            written = await writer.get(Agent, "ada")
            (listed,) = await store.list_shared(Agent)
            assert listed.metadata.resource_version == written.metadata.resource_version
            assert listed.spec.model == written.spec.model
    finally:
        await writer.close()


def test_change_feed_names_writes_only(tmp_path: Path) -> None:
    feed = ChangeFeed.open()
    if feed is None:
        pytest.skip("no inotify on this system")
    try:
        (tmp_path / "a.yaml").write_text("one")
        assert feed.watch(tmp_path, "k")
        assert feed.drain("k") == set()
        assert (tmp_path / "a.yaml").read_text() == "one"  # reads are not changes
        (tmp_path / ".a.yaml.123.tmp").write_text("temp")  # temp files are hidden
        assert feed.drain("k") == set()
        os.replace(tmp_path / ".a.yaml.123.tmp", tmp_path / "b.yaml")
        (tmp_path / "a.yaml").touch()
        assert feed.drain("k") == {"a", "b"}
        assert feed.drain("k") == set()
        assert feed.drain("unknown") is None  # a key nobody watches is never vouched for
    finally:
        feed.close()


def test_change_feed_gives_up_on_a_directory_that_went_away(tmp_path: Path) -> None:
    feed = ChangeFeed.open()
    if feed is None:
        pytest.skip("no inotify on this system")
    watched = tmp_path / "agents"
    watched.mkdir()
    try:
        assert feed.watch(watched, "k")
        watched.rmdir()
        watched.mkdir()  # back, but no longer the watched directory
        assert feed.drain("k") is None
        assert feed.drain("k") is None  # never again "nothing changed"
    finally:
        feed.close()
