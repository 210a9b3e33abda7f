"""The periodic resync skips agents left exactly as their last reconcile saw them, and only those.

Against the real engine: three Ready agents; then, with the controller stopped (so no event handler
gets there first), one container is restarted behind its back and one agent's manifest is edited.
A periodic resync must queue exactly those two, a full resync (secret change, runtime reconnect)
all three.
"""

from __future__ import annotations

from typing import Any

import docker
import pytest

from controller.commands.resources import apply_resource
from controller.manager import Controller
from controller.reconcile import settled_fingerprint
from controller.resources import API_VERSION, Agent, parse_resource
from controller.runtime.docker import container_name

pytestmark = pytest.mark.docker

NAMES = ("calm", "moved", "edited")


def manifest(name: str, labels: dict[str, str] | None = None) -> Agent:
    spec = {"provider": "ollama", "resources": {"preset": "nano"}}
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": meta, "spec": spec})


async def test_periodic_resync_queues_only_what_changed(plane: Any) -> None:
    for name in NAMES:
        await apply_resource(plane.store, manifest(name))
    await plane.start_controller()
    for name in NAMES:
        await plane.wait_running(name)
    reconciler = plane.controller.reconciler

    async def all_settled() -> bool:
        owned = {o.key: o for o in await plane.runtime.list_owned()}
        return all(
            reconciler.settled.get(a.key) == settled_fingerprint(a.metadata.resource_version, owned.get(a.key))
            for a in await plane.store.list(Agent)
        )

    await plane.until(all_settled, timeout=60, what="every agent settled")
    await plane.stop_controller()

    docker.from_env().containers.get(container_name(plane.settings.instance, "default/moved")).restart(timeout=1)
    await apply_resource(plane.store, manifest("edited", labels={"team": "new"}))

    periodic = Controller(plane.store, plane.runtime, reconciler)
    await periodic.resync(skip_settled=True)
    assert periodic.queue._pending == {"default/moved", "default/edited"}
    full = Controller(plane.store, plane.runtime, reconciler)
    await full.resync()
    assert full.queue._pending == {f"default/{name}" for name in NAMES}
