"""A real control plane for end-to-end tests: FileStore in a temp home, DockerRuntime with a unique
instance id (so parallel runs never touch each other's containers), the Controller in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from controller.resources import Agent, Phase
from controller.settings import Settings
from controller.wiring import build_controller, open_runtime, open_store


@pytest.fixture
def e2e_settings(tmp_path: Path, agent_image: str) -> Settings:
    base = Settings.from_env({"CLAWPEN_HOME": str(tmp_path / "home")})
    return replace(base, instance=f"t{uuid.uuid4().hex[:8]}", image=agent_image, resync_seconds=2.0)


class Plane:
    """The store, runtime and a restartable controller of one test."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = open_store(settings)
        self.runtime = open_runtime(settings)
        self.controller = None
        self._task: asyncio.Task[None] | None = None

    async def start_controller(self) -> None:
        self.controller = build_controller(self.settings, self.store, self.runtime)
        self._task = asyncio.create_task(self.controller.run())

    async def stop_controller(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_for(
        self, name: str, predicate: Callable[[Agent], bool], timeout: float = 60.0, what: str = ""
    ) -> Agent:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                last = await self.store.get(Agent, name)
                if predicate(last):
                    return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name}: timed out waiting for {what}; last status: {last.status if last else None}")

    async def wait_running(self, name: str, timeout: float = 60.0) -> Agent:
        def ready(a: Agent) -> bool:
            cond = a.status.condition("Ready") if a.status else None
            return bool(a.status and a.status.phase == Phase.RUNNING and cond and cond.status == "True")

        return await self.wait_for(name, ready, timeout, "Running and Ready")

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "") -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if await check():
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    async def cleanup(self) -> None:
        await self.stop_controller()
        for observed in await self.runtime.list_owned():
            with contextlib.suppress(Exception):
                await self.runtime.remove(observed.key, volumes=True)
        with contextlib.suppress(Exception):
            await self.runtime.remove_network()  # type: ignore[attr-defined]
        await self.runtime.close()
        await self.store.close()


@pytest.fixture
async def plane(e2e_settings: Settings) -> AsyncIterator[Plane]:
    os.environ.setdefault("CLAWPEN_TEST", "1")
    p = Plane(e2e_settings)
    try:
        yield p
    finally:
        await p.cleanup()
