"""The controller against a real Docker engine: converge, repair, adopt, replace, stop/start,
delete, orphans, invalid specs and corrupt files — what issue 2's "done when" describes."""

from __future__ import annotations

import asyncio

import docker
import pytest

from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Agent, DesiredState, Phase, parse_resource
from controller.runtime.docker import container_name

pytestmark = pytest.mark.docker


def manifest(name: str, **spec) -> Agent:
    spec.setdefault("provider", "ollama")  # a provider that needs no key, so the agent is configured
    spec.setdefault("resources", {"preset": "nano"})
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": spec})


def container(plane, name: str):
    client = docker.from_env()
    return client.containers.get(container_name(plane.settings.instance, f"default/{name}"))


def cgroup_memory_limit(c) -> int:
    code, out = c.exec_run(["python3", "-c", "print(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read())"])
    assert code == 0, out
    return int(out.decode().strip())


async def test_converge_repair_adopt_replace(plane):
    for name in ("alpha", "beta", "gamma"):
        await apply_resource(plane.store, manifest(name))
    await plane.start_controller()
    for name in ("alpha", "beta", "gamma"):
        agent = await plane.wait_running(name)
        assert agent.status.endpoint.startswith("http://127.0.0.1:")
        assert agent.status.observed_generation == agent.metadata.generation
    ids = {n: container(plane, n).id for n in ("alpha", "beta", "gamma")}

    # drift: a container removed behind the controller's back comes back (Docker events → reconcile)
    container(plane, "beta").remove(force=True)
    repaired = await plane.until(
        lambda: _running_with_new_id(plane, "beta", ids["beta"]), timeout=30, what="beta to be recreated"
    )
    print(f"\nrepair after docker rm -f: {repaired:.2f}s")
    await plane.wait_running("beta")
    ids["beta"] = container(plane, "beta").id

    # drift: stopped behind its back → started again, same container
    container(plane, "gamma").stop(timeout=2)
    await plane.until(lambda: _is_running(plane, "gamma"), timeout=30, what="gamma to be restarted")
    assert container(plane, "gamma").id == ids["gamma"]

    # a controller restart adopts what runs: nothing recreated
    await plane.stop_controller()
    await plane.start_controller()
    await plane.controller.ready.wait()
    await asyncio.sleep(1.5)
    for name in ("alpha", "beta", "gamma"):
        await plane.wait_running(name)
        assert container(plane, name).id == ids[name], f"{name} was recreated after a controller restart"

    # a memory change replaces the container; the new limit is in its cgroup
    await apply_resource(plane.store, manifest("alpha", resources={"memoryMB": 700}))
    await plane.until(lambda: _running_with_new_id(plane, "alpha", ids["alpha"]), timeout=30, what="alpha replaced")
    await plane.wait_running("alpha")
    assert cgroup_memory_limit(container(plane, "alpha")) == 700 * 1024 * 1024


async def test_stop_start_delete_and_volumes_kept(plane):
    await apply_resource(plane.store, manifest("delta"))
    await plane.start_controller()
    await plane.wait_running("delta")
    c = container(plane, "delta")
    assert c.exec_run(["python3", "-c", "open('/data/keep.txt','w').write('kept')"]).exit_code == 0

    agent = await plane.store.get(Agent, "delta")
    agent.spec.state = DesiredState.STOPPED
    await plane.store.replace(agent)
    await plane.wait_for("delta", lambda a: a.status.phase == Phase.STOPPED, what="Stopped")
    assert not await _is_running(plane, "delta")

    agent = await plane.store.get(Agent, "delta")
    agent.spec.state = DesiredState.RUNNING
    await plane.store.replace(agent)
    await plane.wait_running("delta")
    assert container(plane, "delta").id == c.id  # start/stop never recreates

    await plane.store.delete(Agent, "delta")
    await plane.until(lambda: _gone(plane, "delta"), timeout=30, what="container removed after delete")
    volumes = docker.from_env().volumes.list(filters={"label": f"clawpen.dev/instance={plane.settings.instance}"})
    assert volumes, "volumes must survive a delete unless asked"

    # same name again: the data is still there
    await apply_resource(plane.store, manifest("delta"))
    await plane.wait_running("delta")
    code, out = container(plane, "delta").exec_run(["python3", "-c", "print(open('/data/keep.txt').read())"])
    assert out.decode().strip() == "kept"


async def test_orphans_removed_and_invalid_specs_fail_quietly(plane):
    await apply_resource(plane.store, manifest("eps"))
    await apply_resource(plane.store, manifest("zeta"))
    await plane.start_controller()
    await plane.wait_running("eps")
    await plane.wait_running("zeta")

    # the spec disappears while the controller is down → its container is an orphan at start-up
    await plane.stop_controller()
    await plane.store.delete(Agent, "zeta")
    await plane.start_controller()
    await plane.until(lambda: _gone(plane, "zeta"), timeout=30, what="orphan zeta removed")

    # an invalid spec is Failed with a reason and is not retried in a storm
    await apply_resource(plane.store, manifest("eta", template="does-not-exist"))
    failed = await plane.wait_for("eta", lambda a: a.status.phase == Phase.FAILED, what="Failed")
    assert failed.status.condition("Ready").reason == "UnknownTemplate"
    before = plane.controller.reconcile_count
    await asyncio.sleep(3)
    assert plane.controller.reconcile_count - before < 10, "an invalid spec must not be retried in a loop"

    # a corrupt file: clear error for that object, the others keep running
    path = plane.settings.home / "agents" / "eta.yaml"
    path.write_text("apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: eta\nspec: [}")
    broken = await plane.store.list_broken(Agent)
    assert [b.name for b in broken] == ["eta"]
    await asyncio.sleep(1)
    await plane.wait_running("eps")
    assert await _is_running(plane, "eps")


async def _is_running(plane, name: str) -> bool:
    try:
        c = container(plane, name)
    except docker.errors.NotFound:
        return False
    return c.status == "running"


async def _running_with_new_id(plane, name: str, old_id: str) -> bool:
    try:
        c = container(plane, name)
    except docker.errors.NotFound:
        return False
    return c.id != old_id and c.status == "running"


async def _gone(plane, name: str) -> bool:
    try:
        container(plane, name)
    except docker.errors.NotFound:
        return True
    return False


async def test_missing_image_is_reported_and_describe_shows_history(plane, monkeypatch, capsys):
    from controller.cli import main

    await apply_resource(plane.store, manifest("theta", image="clawpen/no-such-image:0"))
    await apply_resource(plane.store, manifest("iota"))
    await plane.start_controller()
    pending = await plane.wait_for(
        "theta", lambda a: a.status is not None and a.status.condition("Ready").reason == "ImageMissing",
        what="ImageMissing",
    )
    assert pending.status.phase == Phase.PENDING
    assert "clawpen image build" in pending.status.condition("Ready").message
    await plane.wait_running("iota")  # one agent's missing image never blocks another

    monkeypatch.setenv("CLAWPEN_HOME", str(plane.settings.home))
    monkeypatch.setenv("CLAWPEN_INSTANCE", plane.settings.instance)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["describe", "agent", "iota"]) == 0
    out = capsys.readouterr().out
    assert "Ready=True" in out and "Created" in out.split("Events:")[1]
