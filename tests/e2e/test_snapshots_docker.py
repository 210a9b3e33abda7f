"""Snapshots against agents the controller runs (hardened containers from the Docker runtime):
restore while Running, clone via the Store, export → delete → import, and the controller keeps
each agent Running and Ready on the restored or copied data."""

from __future__ import annotations

import asyncio
import contextlib
import io

import docker
import pytest

from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Agent, parse_resource
from controller.runtime.docker import container_name
from controller.snapshot_export import clone_agent, export_agent, import_agent
from controller.snapshots import Snapshots

pytestmark = pytest.mark.docker


def manifest(name: str) -> Agent:
    spec = {"provider": "ollama", "resources": {"preset": "nano"}}
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": spec})


def container(plane, name: str):
    return docker.from_env().containers.get(container_name(plane.settings.instance, f"default/{name}"))


def write(plane, name: str, path: str, data: bytes) -> None:
    code = "import sys; open(sys.argv[1], 'wb').write(bytes.fromhex(sys.argv[2]))"
    result = container(plane, name).exec_run(["python3", "-c", code, path, data.hex()])
    assert result.exit_code == 0, result.output


def read(plane, name: str, path: str) -> bytes | None:
    code = "import sys, os; p = sys.argv[1]; print(open(p, 'rb').read().hex() if os.path.exists(p) else '-')"
    out = container(plane, name).exec_run(["python3", "-c", code, path]).output.strip()
    return None if out == b"-" else bytes.fromhex(out.decode())


async def test_restore_clone_export_import_under_the_controller(plane):
    snaps = Snapshots(plane.settings)
    names = ("keeper", "keeper-clone", "keeper-copy")
    try:
        await apply_resource(plane.store, manifest("keeper"))
        await plane.start_controller()
        await plane.wait_running("keeper")
        write(plane, "keeper", "/data/notes.txt", b"first")
        write(plane, "keeper", "/workspace/work.txt", b"draft 1")

        info = await asyncio.to_thread(snaps.create, await plane.store.get(Agent, "keeper"))
        write(plane, "keeper", "/data/notes.txt", b"second")
        write(plane, "keeper", "/data/later.txt", b"later")
        await asyncio.to_thread(snaps.restore, "keeper", info.id)
        await plane.wait_running("keeper")
        assert read(plane, "keeper", "/data/notes.txt") == b"first"
        assert read(plane, "keeper", "/data/later.txt") is None
        assert read(plane, "keeper", "/workspace/work.txt") == b"draft 1"

        clone = await clone_agent(plane.store, snaps, "keeper", info.id, "keeper-clone")
        assert clone.metadata.name == "keeper-clone"
        await plane.wait_running("keeper-clone")
        assert read(plane, "keeper-clone", "/data/notes.txt") == b"first"

        archive = io.BytesIO()
        await export_agent(plane.store, snaps, "keeper", archive)
        await plane.store.delete(Agent, "keeper")
        await plane.until(lambda: _gone(plane, "keeper"), timeout=30, what="keeper's container removed")
        await plane.runtime.remove("default/keeper", volumes=True)

        archive.seek(0)
        await import_agent(plane.store, snaps, archive, name="keeper-copy")
        await plane.wait_running("keeper-copy")
        assert read(plane, "keeper-copy", "/data/notes.txt") == b"first"
        assert read(plane, "keeper-copy", "/workspace/work.txt") == b"draft 1"
    finally:
        await plane.stop_controller()
        for name in names:
            with contextlib.suppress(Exception):
                await plane.runtime.remove(f"default/{name}", volumes=True)


async def _gone(plane, name: str) -> bool:
    try:
        container(plane, name)
    except docker.errors.NotFound:
        return True
    return False
