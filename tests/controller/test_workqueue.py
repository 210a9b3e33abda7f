"""WorkQueue: dedupe, one in-flight per key, delayed and rate-limited re-adds."""

import asyncio

from controller.workqueue import WorkQueue


async def test_dedupes_pending_keys():
    q = WorkQueue()
    for _ in range(5):
        q.add("default/a")
    q.add("default/b")
    assert len(q) == 2
    assert await q.get() == "default/a"
    assert await q.get() == "default/b"


async def test_key_added_while_processing_comes_back_once_after_done():
    q = WorkQueue()
    q.add("k")
    key = await q.get()
    q.add("k")
    q.add("k")
    assert len(q) == 0  # not handed to a second worker while the first works on it
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "k"


async def test_add_after_and_rate_limit_backoff_grows():
    q = WorkQueue(base_delay=0.01, max_delay=0.04)
    delays = [q.add_rate_limited("k") for _ in range(4)]
    assert delays == [0.01, 0.02, 0.04, 0.04]
    assert await asyncio.wait_for(q.get(), 1) == "k"
    q.forget("k")
    assert q.failures("k") == 0


async def test_earlier_timer_wins():
    q = WorkQueue()
    q.add_after("k", 0.01)
    q.add_after("k", 10)
    assert await asyncio.wait_for(q.get(), 1) == "k"
