"""Docker usage samples on their own small, bounded thread pool, with CPU measured between samples.

`docker stats --no-stream` (stream=False) makes the engine wait for two readings, about 1–2 s per
container, and the SDK blocks a thread for all of it. Run on the shared default executor, 50 agents
stalled every other route and the reconcile loop for ~16 s. So samples here are one-shot (the engine
answers at once, without the previous reading), taken on a pool of their own with a timeout, and the
CPU percentage is computed against this sampler's previous reading of the same container: the first
reading of an agent reports 0 % CPU, later ones the usage since the last sample.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.runtime.base import RuntimeError_, Stats
from controller.runtime.docker_parse import stats_from_sample


class StatsSampler:
    def __init__(self, workers: int, timeout: float):
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clawpen-stats")
        self._previous: dict[str, dict[str, Any]] = {}  # key -> cpu_stats of the last sample
        self._lock = threading.Lock()

    async def sample(self, key: str, fetch: Callable[[], dict[str, Any]]) -> Stats:
        loop = asyncio.get_running_loop()
        try:
            raw = await asyncio.wait_for(loop.run_in_executor(self._pool, fetch), self.timeout)
        except TimeoutError:
            raise RuntimeError_(
                f"the engine did not report usage of agent {key} within {self.timeout:g} s", reason="Timeout"
            ) from None
        except RuntimeError_:
            with self._lock:
                self._previous.pop(key, None)
            raise
        cpu = raw.get("cpu_stats") or {}
        with self._lock:
            previous = self._previous.get(key)
            self._previous[key] = cpu
        # The container's id changes on replace; a counter that went backwards is a new container.
        total = (cpu.get("cpu_usage") or {}).get("total_usage", 0)
        if previous is not None and (previous.get("cpu_usage") or {}).get("total_usage", 0) > total:
            previous = None
        return stats_from_sample({**raw, "precpu_stats": previous or {}}, first=previous is None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
