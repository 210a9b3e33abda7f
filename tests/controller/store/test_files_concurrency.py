"""Several processes on one store at once, as the CLI, gateway and controller are in real life.

Writers in separate processes do read-modify-write cycles with optimistic concurrency while this
process reads the raw files: no update may be lost and no reader may ever see a partial file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from controller.resources import Agent, AgentSpec, ObjectMeta
from controller.store.base import InvalidObject
from controller.store.files import FileStore
from controller.store.specfile import BrokenSpec, parse_spec

REPO = Path(__file__).resolve().parents[3]
ROUNDS = 40  # per writer; bounded, so the test takes the same work on any machine

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from controller.resources import Agent, AgentStatus, Phase
    from controller.store.base import Conflict
    from controller.store.files import FileStore

    async def main(home, me, rounds):
        store = FileStore(Path(home))
        conflicts = 0
        for i in range(rounds):
            while True:
                agent = await store.get(Agent, "shared")
                count = int(agent.metadata.annotations.get("count", "0"))
                agent.metadata.annotations["count"] = str(count + 1)
                agent.spec.env = {"WRITER": me, "PADDING": "x" * (i * 50)}  # sizes vary: torn reads show
                try:
                    await store.replace(agent)
                    break
                except Conflict:
                    conflicts += 1
            await store.update_status(Agent, "shared", AgentStatus(phase=Phase.RUNNING, message=f"{me} {i}"))
        await store.close()
        print(conflicts)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_concurrent_writers_lose_nothing_and_readers_never_see_partial_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = FileStore(home)
    asyncio.run(store.create(Agent(metadata=ObjectMeta(name="shared"), spec=AgentSpec(model="m"))))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home), name, str(ROUNDS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    spec = home / "agents" / "shared.yaml"
    reads = 0
    while any(w.poll() is None for w in writers):
        raw = spec.read_bytes()
        try:
            parse_spec(Agent, spec, raw)  # a partial file would not parse (or not validate)
        except BrokenSpec as err:
            raise AssertionError(f"a reader saw a partial spec file ({len(raw)} bytes): {err}") from None
        try:
            store._get_sync(Agent, "shared")  # the full read path, lock-free unless a sync is due
        except InvalidObject as err:
            raise AssertionError(f"get() saw an invalid object: {err}") from None
        reads += 1
    outputs = [w.communicate(timeout=60) for w in writers]
    for writer, (_out, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
    final = asyncio.run(store.get(Agent, "shared"))
    assert final.metadata.annotations["count"] == str(2 * ROUNDS)  # no lost update
    assert final.metadata.generation == 1 + 2 * ROUNDS  # every replace changed the spec once
    assert final.status is not None and final.status.message in (f"one {ROUNDS - 1}", f"two {ROUNDS - 1}")
    assert reads > 0
    assert [p for p in home.rglob("*") if p.name.endswith(".tmp")] == []


READER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from controller.resources import Agent
    from controller.store.files import FileStore

    async def main(home):
        store = FileStore(Path(home))
        for agent in await store.list(Agent):
            print(agent.name, agent.metadata.uid, agent.metadata.generation)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_processes_adopting_the_same_hand_written_files_agree_on_uids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    FileStore(home)
    for i in range(100):
        (home / "agents" / f"a{i}.yaml").write_text(
            f"apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {{name: a{i}}}\nspec: {{model: m}}\n"
        )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(home)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [r.communicate(timeout=60)[0] for r in readers]
    assert all(r.returncode == 0 for r in readers)
    assert len(outputs[0].splitlines()) == 100
    assert outputs[0] == outputs[1] == outputs[2]  # one adoption each: same uid, generation 1 everywhere
    assert all(line.endswith(" 1") for line in outputs[0].splitlines())
