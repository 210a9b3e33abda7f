"""Status tells the truth about failing containers (issue 10, hole 11).

An agent in an OOM crash loop (`memoryMB: 12`) used to show "starting, waiting for /healthz" while
Docker counted OOMKilled ×9. Now it is Failed with reason OOMKilled, the restart count and the last
exit. (Docker start errors and crash loops are covered by tests/controller/golden/status.)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Phase, parse_resource
from controller.settings import Settings
from tests.e2e.conftest import Plane

pytestmark = pytest.mark.docker


@pytest.fixture
async def plane(tmp_path: Path, agent_image: str) -> AsyncIterator[Plane]:
    base = Settings.from_env({"CLAWPEN_HOME": str(tmp_path / "home")})
    p = Plane(replace(base, instance=f"t{uuid.uuid4().hex[:8]}", image=agent_image, resync_seconds=2.0))
    try:
        yield p
    finally:
        await p.cleanup()


async def test_oom_crash_loop_is_failed_with_count_and_reason(plane: Plane) -> None:
    spec = {"provider": "ollama", "model": "m", "resources": {"memoryMB": 12}}
    agent = parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "tiny"}, "spec": spec})
    await apply_resource(plane.store, agent)
    await plane.start_controller()

    def oom_looping(a: object) -> bool:
        status = getattr(a, "status", None)
        ready = status.condition("Ready") if status else None
        return bool(status and ready and ready.reason == "OOMKilled" and status.restart_count >= 2)

    found = await plane.wait_for("tiny", oom_looping, timeout=90, what="OOMKilled with restarts")
    assert found.status is not None and found.status.phase == Phase.FAILED
    ready = found.status.condition("Ready")
    assert ready is not None
    assert "ran out of memory" in ready.message and "restarts:" in ready.message and "exit code 137" in ready.message
    assert "spec.resources.memoryMB" in ready.message
