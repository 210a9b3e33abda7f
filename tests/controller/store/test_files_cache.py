"""The file store's read cache never serves stale data and never shares objects with its callers.

Writes here come from other processes (a real subprocess, as the CLI or an editor would be) or from
plain file operations behind the store's back, then the very next read must see them. Some tests
shrink the "racy" window (see controller/store/filecache.py) so that an entry becomes trusted after
a short wait instead of 2 s: that is the state where only the stat identity guards freshness.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from store_helpers import agent, manifest

from controller.resources import Agent, AgentStatus, Phase
from controller.store import filecache
from controller.store.base import InvalidObject, NotFound
from controller.store.files import FileStore

REPO = Path(__file__).resolve().parents[3]
SHORT_WINDOW_NS = 50_000_000


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries read 50 ms after a file's last change are trusted (instead of 2 s)."""
    monkeypatch.setattr(filecache, "RACY_WINDOW_NS", SHORT_WINDOW_NS)


def wait_settled() -> None:
    time.sleep(SHORT_WINDOW_NS / 1e9 * 3)


def run_elsewhere(code: str, *args: str) -> None:
    """Run `code` in another Python process, as the CLI or an editor would write."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], check=True, env=env, timeout=60)


REPLACE_FILE = """
    import os, sys
    path, text = sys.argv[1], sys.argv[2]
    tmp = path + ".editor-tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
"""


def spec_file(home: Path, name: str) -> Path:
    return home / "agents" / f"{name}.yaml"


async def warm(store: FileStore, name: str) -> Agent:
    """Read twice so the entry is cached (and trusted when settled)."""
    await store.get(Agent, name)
    return await store.get(Agent, name)


@pytest.mark.parametrize("age", ["fresh", "settled"])
async def test_replace_by_another_process_is_seen_at_once(
    store: FileStore, home: Path, monkeypatch: pytest.MonkeyPatch, age: str
) -> None:
    if age == "settled":
        monkeypatch.setattr(filecache, "RACY_WINDOW_NS", SHORT_WINDOW_NS)
    spec_file(home, "finn").write_text(manifest("finn", model="gpt-4o"))
    if age == "settled":
        wait_settled()
    before = await warm(store, "finn")
    assert before.spec.model == "gpt-4o" and before.metadata.generation == 1
    # Same size, same directory, atomically renamed: only the inode (and ctime) tell it apart.
    run_elsewhere(REPLACE_FILE, str(spec_file(home, "finn")), manifest("finn", model="gpt-4x"))
    after = await store.get(Agent, "finn")
    assert after.spec.model == "gpt-4x"
    assert after.metadata.generation == 2
    assert int(after.metadata.resource_version or 0) > int(before.metadata.resource_version or 0)
    # The generation bump is persisted, not just computed: another store (cold) agrees.
    cold = FileStore(home)
    assert (await cold.get(Agent, "finn")).metadata.generation == 2
    assert [a.spec.model for a in await store.list(Agent)] == ["gpt-4x"]


async def test_same_size_in_place_rewrite_with_old_mtime_is_seen(
    store: FileStore, home: Path, settled: None
) -> None:
    path = spec_file(home, "finn")
    path.write_text(manifest("finn", model="aaaa"))
    wait_settled()
    await warm(store, "finn")
    old = path.stat()
    # The worst an editor can do: same inode, same size, mtime put back. Only ctime moves.
    with open(path, "r+") as handle:
        handle.write(manifest("finn", model="bbbb"))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns) == (
        old.st_ino,
        old.st_size,
        old.st_mtime_ns,
    )
    assert (await store.get(Agent, "finn")).spec.model == "bbbb"


async def test_rapid_same_size_rewrites_are_seen(home: Path) -> None:
    store = FileStore(home)
    path = spec_file(home, "finn")
    for round_ in range(20):
        model = f"m{round_ % 10}aaa"
        path.write_text(manifest("finn", model=model))
        assert (await store.get(Agent, "finn")).spec.model == model
        assert [a.spec.model for a in await store.list(Agent)] == [model]


async def test_rewrite_the_stat_cannot_see_is_seen_while_the_file_is_young(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two same-size writes within one timestamp tick, the freed inode number handed out again:
    nothing in the stat differs. A filesystem with coarse timestamps (FAT: 2 s) does this; we make
    this one look like it by reporting one fixed identity for the file."""
    store = FileStore(home)
    path = spec_file(home, "finn")
    path.write_text(manifest("finn", model="aaaa"))
    real = path.stat()
    frozen = filecache.FileIdentity(
        real.st_dev, real.st_ino, real.st_size, real.st_mtime_ns, real.st_ctime_ns
    )
    monkeypatch.setattr(filecache.FileIdentity, "of", classmethod(lambda cls, st: frozen))
    assert (await warm(store, "finn")).spec.model == "aaaa"
    path.write_text(manifest("finn", model="bbbb"))
    assert (await store.get(Agent, "finn")).spec.model == "bbbb"
    assert [a.spec.model for a in await store.list(Agent)] == ["bbbb"]


async def test_status_written_by_another_process_is_seen(store: FileStore, home: Path, settled: None) -> None:
    await store.create(agent("finn", model="m"))
    wait_settled()
    assert (await warm(store, "finn")).status is None
    run_elsewhere(
        """
        import asyncio, sys
        from pathlib import Path
        from controller.resources import Agent, AgentStatus, Phase
        from controller.store.files import FileStore
        store = FileStore(Path(sys.argv[1]))
        asyncio.run(store.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING)))
        """,
        str(home),
    )
    got = await store.get(Agent, "finn")
    assert got.status is not None and got.status.phase == Phase.RUNNING
    assert (await store.list(Agent))[0].status == got.status


async def test_returned_objects_are_copies(store: FileStore, home: Path, settled: None) -> None:
    created = agent("finn", model="m", env={"A": "1"})
    created.metadata.labels = {"team": "x"}
    await store.create(created)
    await store.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    wait_settled()
    mine = await warm(store, "finn")
    mine.spec.model = "changed"
    mine.spec.env["A"] = "changed"
    mine.metadata.labels["team"] = "changed"
    assert mine.status is not None
    mine.status.phase = Phase.FAILED
    listed = (await store.list(Agent))[0]
    listed.spec.env["B"] = "added"
    for again in (await store.get(Agent, "finn"), (await store.list(Agent))[0]):
        assert again.spec.model == "m" and again.spec.env == {"A": "1"}
        assert again.metadata.labels == {"team": "x"}
        assert again.status is not None and again.status.phase == Phase.RUNNING


async def test_caller_mutation_then_replace_is_a_real_change(store: FileStore, settled: None) -> None:
    await store.create(agent("finn", model="m"))
    wait_settled()
    current = await warm(store, "finn")
    current.spec.model = "n"
    replaced = await store.replace(current)
    assert replaced.metadata.generation == 2
    assert (await store.get(Agent, "finn")).spec.model == "n"


async def test_broken_file_stays_reported_and_its_fix_is_seen(
    store: FileStore, home: Path, settled: None
) -> None:
    path = spec_file(home, "finn")
    path.write_text(manifest("finn", extra="  bogus: 1\n"))
    wait_settled()
    for _ in range(3):
        assert [b.name for b in await store.list_broken(Agent)] == ["finn"]
        assert await store.list(Agent) == []
        with pytest.raises(InvalidObject, match="bogus"):
            await store.get(Agent, "finn")
    run_elsewhere(REPLACE_FILE, str(path), manifest("finn"))
    assert await store.list_broken(Agent) == []
    assert [a.metadata.name for a in await store.list(Agent)] == ["finn"]


async def test_hand_delete_and_revert_are_seen(store: FileStore, home: Path, settled: None) -> None:
    await store.create(agent("finn", model="m"))
    wait_settled()
    uid = (await warm(store, "finn")).metadata.uid
    text = spec_file(home, "finn").read_text()
    spec_file(home, "finn").unlink()
    with pytest.raises(NotFound):
        await store.get(Agent, "finn")
    assert await store.list(Agent) == []
    spec_file(home, "finn").write_text(text)
    assert (await store.get(Agent, "finn")).metadata.uid == uid


async def test_settled_files_are_parsed_once(store: FileStore, home: Path, settled: None) -> None:
    """The point of the cache: reading unchanged files again parses nothing."""
    for i in range(5):
        await store.create(agent(f"a{i}", model="m"))
    wait_settled()
    await store.list(Agent)
    specs, states = store._specs[Agent], store._state.cache
    parsed = (specs.parses, states.parses)
    for _ in range(3):
        assert len(await store.list(Agent)) == 5
        await store.get(Agent, "a0")
    assert (specs.parses, states.parses) == parsed
    spec_file(home, "a3").write_text(manifest("a3", model="other"))
    assert {a.metadata.name: a.spec.model for a in await store.list(Agent)}["a3"] == "other"
    assert specs.parses == parsed[0] + 1  # only the changed file (its state was rewritten: +1 there)
