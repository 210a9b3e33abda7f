"""Secrets end to end: encrypted store → controller → Docker runtime → /run/secrets in the agent.

What issue 7 promises and only a real engine can show: each agent reads its own secret or the
global one (never another agent's), the value is absent from `docker inspect`, the environment and
the logs, a missing secret is a SecretMissing condition, and changing a secret replaces exactly the
agents that use it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import docker
import pytest

from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Agent, parse_resource
from controller.runtime.docker import container_name
from controller.secrets import SecretStore
from tests.e2e.conftest import Plane

pytestmark = pytest.mark.docker

GLOBAL_VALUE = b"global-9f2c-value"
OWN_VALUE = b"own-a-77e1-value"


def manifest(name: str, secrets: list[str]) -> Agent:
    spec = {"provider": "ollama", "resources": {"preset": "nano"}, "secrets": secrets}
    return parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": spec})


def container(plane, name: str):
    return docker.from_env().containers.get(container_name(plane.settings.instance, f"default/{name}"))


def read_secret(plane, name: str, secret: str) -> bytes | None:
    code = (
        "import sys, os; p = '/run/secrets/' + sys.argv[1]; "
        "print(open(p, 'rb').read().hex() if os.path.exists(p) else '-')"
    )
    result = container(plane, name).exec_run(["python3", "-c", code, secret])
    assert result.exit_code == 0, result.output
    out = result.output.strip()
    return None if out == b"-" else bytes.fromhex(out.decode())


@pytest.fixture
async def slow_resync_plane(e2e_settings):
    """A resync far longer than the test: a secret change must be noticed by itself, not by resync."""
    p = Plane(replace(e2e_settings, resync_seconds=600.0))
    try:
        yield p
    finally:
        await p.cleanup()


async def test_injection_scoping_and_restart_on_change(slow_resync_plane):
    plane = slow_resync_plane
    secrets = SecretStore.from_settings(plane.settings)
    secrets.set("API_KEY", GLOBAL_VALUE)
    secrets.set("API_KEY", OWN_VALUE, agent="sa")
    secrets.set("ONLY_A", OWN_VALUE, agent="sa")
    await apply_resource(plane.store, manifest("sa", ["API_KEY", "ONLY_A"]))
    await apply_resource(plane.store, manifest("sb", ["API_KEY"]))
    await apply_resource(plane.store, manifest("sc", []))
    await plane.start_controller()
    for name in ("sa", "sb", "sc"):
        await plane.wait_running(name)

    assert read_secret(plane, "sa", "API_KEY") == OWN_VALUE
    assert read_secret(plane, "sa", "ONLY_A") == OWN_VALUE
    assert read_secret(plane, "sb", "API_KEY") == GLOBAL_VALUE
    assert read_secret(plane, "sb", "ONLY_A") is None  # never agent A's
    assert read_secret(plane, "sc", "API_KEY") is None

    for name in ("sa", "sb", "sc"):
        c = container(plane, name)
        inspected = json.dumps(c.attrs).encode()
        assert GLOBAL_VALUE not in inspected and OWN_VALUE not in inspected
        env = c.exec_run(["python3", "-c", "import os; print(dict(os.environ))"]).output
        assert GLOBAL_VALUE not in env and OWN_VALUE not in env
        logs = c.logs()
        assert GLOBAL_VALUE not in logs and OWN_VALUE not in logs
    status = json.dumps((await plane.store.get(Agent, "sb")).dump()).encode()
    assert GLOBAL_VALUE not in status

    # Changing the global secret replaces sb (its plan hash covers the version), not sa or sc.
    ids = {name: container(plane, name).id for name in ("sa", "sb", "sc")}
    secrets.set("API_KEY", b"global-rotated-value")

    async def sb_replaced() -> bool:
        try:
            return container(plane, "sb").id != ids["sb"] and container(plane, "sb").status == "running"
        except docker.errors.NotFound:
            return False

    took = await plane.until(sb_replaced, timeout=60, what="sb to be replaced after its secret changed")
    print(f"\nsecret change → agent replaced in {took:.2f}s")
    await plane.wait_running("sb")
    assert read_secret(plane, "sb", "API_KEY") == b"global-rotated-value"
    assert container(plane, "sa").id == ids["sa"]
    assert container(plane, "sc").id == ids["sc"]


async def test_missing_secret_is_a_condition(plane):
    await apply_resource(plane.store, manifest("sm", ["NOT_SET_ANYWHERE"]))
    await plane.start_controller()

    def missing(agent: Agent) -> bool:
        ready = agent.status.condition("Ready") if agent.status else None
        return bool(ready and ready.reason == "SecretMissing")

    agent = await plane.wait_for("sm", missing, timeout=30, what="a SecretMissing condition")
    assert "NOT_SET_ANYWHERE" in agent.status.condition("Ready").message
