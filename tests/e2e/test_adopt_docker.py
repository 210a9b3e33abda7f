"""Restart adoption and backed-off health probing, against the real Docker engine.

A controller restarted with running, Ready agents adopts every one of them: no container recreated,
no status written (so none leaves Running, not even for a moment), and no /healthz probe at all (the
stored Ready status on the same container counts; the slow re-probe comes later). A Docker event
on one agent (its container stopped behind our back) still gets it probed and back to Ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Agent, parse_resource

pytestmark = pytest.mark.docker

NAMES = ("a1", "a2", "a3", "a4")


def manifest(name: str) -> Agent:
    spec = {"provider": "ollama", "resources": {"preset": "nano"}}
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": spec})


def counting(plane: Any, probes: list[str]) -> None:
    reconciler = plane.controller.reconciler
    real: Callable[..., Awaitable[Any]] = reconciler.probe

    async def probe(endpoint: str, *args: Any) -> Any:
        probes.append(endpoint)
        return await real(endpoint, *args)

    reconciler.probe = probe


async def test_restart_adopts_all_without_recreating_probing_or_flapping(plane: Any) -> None:
    for name in NAMES:
        await apply_resource(plane.store, manifest(name))
    await plane.start_controller()
    before = {name: await plane.wait_running(name) for name in NAMES}

    await plane.stop_controller()
    probes: list[str] = []
    await plane.start_controller()
    counting(plane, probes)  # before the new controller's first await: it sees every probe
    await plane.controller.ready.wait()
    await plane.until(lambda: _true(plane.controller.reconcile_count >= len(NAMES)), timeout=30, what="adoption")
    await asyncio.sleep(0.5)
    for name in NAMES:
        after = await plane.store.get(Agent, name)
        assert after.status == before[name].status, f"{name}: status rewritten on adoption"
        assert after.metadata.resource_version == before[name].metadata.resource_version
        assert (await plane.runtime.observe(f"default/{name}")).container_id == before[name].status.container_id
    assert probes == [], "adoption probed agents whose stored Ready status matches their container"

    # A Docker event (stopped behind our back) makes the controller start and probe it again.
    await plane.runtime.stop("default/a1")
    first_start = before["a1"].status.started_at
    await plane.wait_for("a1", lambda a: bool(a.status and a.status.started_at != first_start), timeout=60)
    again = await plane.wait_running("a1", timeout=60)
    assert again.status.container_id == before["a1"].status.container_id
    assert probes, "a restarted container was taken as Ready without a probe"


async def _true(value: bool) -> bool:
    return value
