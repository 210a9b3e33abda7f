"""Benchmark: FileStore.list(Agent) of 100 agents, cold (a fresh store: every file parsed, as every
read was before the read cache) against warm (same store, files unchanged: a stat per file), in one run.

Also measured, to show what the cache's choices cost: warm reads of files written less than the racy
window ago (re-read but not re-parsed), get() of one agent, the two ways of handing out a private copy
of a cached object, and PyYAML's C loader against the pure-Python one on one spec file.

    python bench/store.py [--agents 100] [--rounds 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.resources import Agent, AgentSpec, AgentStatus, ObjectMeta, Phase, Resources  # noqa: E402
from controller.store import filecache  # noqa: E402
from controller.store.files import FileStore  # noqa: E402


def bench_agent(i: int) -> Agent:
    """The same agents bench/gateway.py seeds."""
    spec = AgentSpec(
        template="coding-assistant",
        provider="openai",
        model="gpt-4o",
        resources=Resources.model_validate({"memoryMB": 1024, "cpu": 1.0}),
        env={"LOG_LEVEL": "info"},
        project=f"p{i % 5}",
        tags=["bench"],
    )
    return Agent(metadata=ObjectMeta(name=f"agent-{i:03d}"), spec=spec)


async def timed(
    rounds: int,
    setup: Callable[[], Awaitable[object]] | None,
    run: Callable[[object], Awaitable[object]],
) -> list[float]:
    """Milliseconds of `run(setup())` per round; setup is not timed."""
    times = []
    for _ in range(rounds):
        arg = await setup() if setup is not None else None
        started = time.perf_counter()
        await run(arg)
        times.append((time.perf_counter() - started) * 1000)
    return times


def row(name: str, ms: list[float]) -> float:
    ms = sorted(ms)
    p50 = statistics.median(ms)
    print(
        f"{name:<58} p50 {p50:7.3f} ms   p95 {ms[max(0, int(len(ms) * 0.95) - 1)]:7.3f} ms"
        f"   min {ms[0]:7.3f} ms"
    )
    return p50


def micro(name: str, fn: Callable[[], object], n: int = 2000) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    us = (time.perf_counter() - started) / n * 1e6
    print(f"{name:<58} {us:8.1f} µs")
    return us


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clawpen-bench-store-") as tmp:
        home = Path(tmp)
        seeder = FileStore(home)
        for i in range(args.agents):
            await seeder.create(bench_agent(i))
            await seeder.update_status(
                Agent, f"agent-{i:03d}", AgentStatus(phase=Phase.RUNNING, message="up")
            )
        await seeder.close()
        settle = filecache.RACY_WINDOW_NS / 1e9 + 0.2
        print(
            f"{args.agents} agents, {args.rounds} rounds; "
            f"waiting {settle:.1f} s (files older than the racy window)"
        )
        time.sleep(settle)

        async def fresh_store() -> FileStore:
            return FileStore(home)

        async def list_all(store: object) -> None:
            assert isinstance(store, FileStore)
            assert len(await store.list(Agent)) == args.agents

        cold = row(
            "list, cold (fresh FileStore each round: parse all)",
            await timed(args.rounds, fresh_store, list_all),
        )
        warm_store = FileStore(home)
        await list_all(warm_store)

        async def same_store() -> FileStore:
            return warm_store

        warm = row(
            "list, warm (same FileStore, files unchanged)", await timed(args.rounds, same_store, list_all)
        )

        async def get_one(store: object) -> None:
            assert isinstance(store, FileStore)
            await store.get(Agent, "agent-007")

        row("get one, cold", await timed(args.rounds, fresh_store, get_one))
        row("get one, warm", await timed(args.rounds, same_store, get_one))

        # Every state file rewritten just now (a status sync): re-read, compared, not re-parsed.
        for i in range(args.agents):
            await warm_store.update_status(
                Agent, f"agent-{i:03d}", AgentStatus(phase=Phase.RUNNING, message="again")
            )
        young = await timed(min(args.rounds, 10), same_store, list_all)
        row("list, warm, state files younger than the racy window", young)

        print(f"\ncold/warm: {cold / warm:.1f}x ({cold:.2f} ms -> {warm:.2f} ms for {args.agents} agents)\n")

        one = (await warm_store.list(Agent))[0]
        document = warm_store._specs[Agent].read(warm_store._spec_key(Agent, one.metadata.name))
        assert document is not None and isinstance(document[1], dict)
        full = {
            **document[1],
            "metadata": one.metadata.model_dump(),
            "status": one.status and one.status.model_dump(),
        }
        micro("private copy: model_copy(deep=True) of a cached Agent", lambda: one.model_copy(deep=True))
        micro(
            "private copy: Agent.model_validate(cached document) (used)", lambda: Agent.model_validate(full)
        )
        raw = (home / "agents" / "agent-007.yaml").read_bytes()
        micro(
            "yaml.load one spec file, SafeLoader (pure Python)",
            lambda: yaml.load(raw, Loader=yaml.SafeLoader),
        )
        if hasattr(yaml, "CSafeLoader"):
            micro(
                "yaml.load one spec file, CSafeLoader (libyaml, used)",
                lambda: yaml.load(raw, Loader=yaml.CSafeLoader),
            )
        await warm_store.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
