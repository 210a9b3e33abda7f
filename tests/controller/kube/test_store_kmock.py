"""KubeStore against kmock, kopf's Kubernetes API emulator: real HTTP, real JSON, real client.

kmock keeps objects and streams watch events, but it does not implement resourceVersion
preconditions, generation, or the status subresource's separation from spec; those are covered by
tests/e2e/kube against a real API server. Here: paths, verbs, bodies, error mapping, watch plumbing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import kmock
import pytest

from controller.kube.client import api_client_for
from controller.resources import Agent, AgentStatus, Condition, Phase, parse_resource
from controller.store.base import InvalidObject, NotFound
from controller.store.kube import KubeStore

AGENTS = "clawpen.dev/v1alpha1/agents"


@pytest.fixture
async def store(kmock: kmock.KubernetesEmulator) -> AsyncIterator[KubeStore]:
    kmock.resources[AGENTS] = kmock.ResourceInfo(kind="Agent", namespaced=True, subresources={"status"})
    s = KubeStore(api_client_for(str(kmock.url)), namespace="default")
    yield s
    await s.close()


def manifest(name: str = "finn", **spec: object) -> Agent:
    doc = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name, "labels": {"team": "finance"}},
        "spec": {"provider": "openai", "model": "gpt-4o", "secrets": ["OPENAI_API_KEY"], **spec},
    }
    agent = parse_resource(doc)
    assert isinstance(agent, Agent)
    return agent


async def test_create_get_list_roundtrip(store: KubeStore, kmock: kmock.KubernetesEmulator) -> None:
    created = await store.create(manifest())
    assert created.spec.model == "gpt-4o" and created.metadata.labels == {"team": "finance"}
    got = await store.get(Agent, "finn")
    assert got.spec.secrets[0].name == "OPENAI_API_KEY"
    assert [a.name for a in await store.list(Agent)] == ["finn"]
    assert [a.name for a in await store.list(Agent, "default")] == ["finn"]
    stored = kmock.objects[AGENTS, "default", "finn"]
    assert stored["spec"]["secrets"] == [{"name": "OPENAI_API_KEY", "asEnv": False}]


async def test_missing_object_is_not_found(store: KubeStore) -> None:
    with pytest.raises(NotFound, match="Agent default/ghost"):
        await store.get(Agent, "ghost")
    with pytest.raises(NotFound):
        await store.delete(Agent, "ghost")


async def test_replace_removes_fields_dropped_from_the_spec_and_keeps_finalizers(
    store: KubeStore, kmock: kmock.KubernetesEmulator
) -> None:
    await store.create(manifest(env={"A": "1", "B": "2"}))
    kmock.objects[AGENTS, "default", "finn"].patch({"metadata": {"finalizers": ["clawpen.dev/finalizer"]}})
    new = manifest(env={"A": "1"}, state="Stopped")
    new.spec.model = None
    replaced = await store.replace(new)
    assert (
        replaced.spec.env == {"A": "1"} and replaced.spec.state == "Stopped" and replaced.spec.model is None
    )
    assert kmock.objects[AGENTS, "default", "finn"]["metadata"]["finalizers"] == ["clawpen.dev/finalizer"]
    patch = kmock["patch"][-1]
    assert patch.headers["Content-Type"].startswith("application/merge-patch+json")


async def test_update_status_uses_the_status_subresource_and_clears_fields(
    store: KubeStore, kmock: kmock.KubernetesEmulator
) -> None:
    await store.create(manifest())
    ready = Condition(type="Ready", status="True", reason="Ready", message="ok")
    await store.update_status(
        Agent, "finn", AgentStatus(phase=Phase.RUNNING, endpoint="http://x", conditions=[ready])
    )
    agent = await store.update_status(Agent, "finn", AgentStatus(phase=Phase.STOPPED))
    assert agent.status is not None and agent.status.phase == Phase.STOPPED
    assert agent.status.endpoint is None and agent.status.conditions == []
    assert kmock["patch"][-1].url.path.endswith("/agents/finn/status")


async def test_invalid_stored_object_is_reported_not_hidden(
    store: KubeStore, kmock: kmock.KubernetesEmulator
) -> None:
    await store.create(manifest("good"))
    kmock.objects[AGENTS, "default", "bad"] = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"resources": {"memoryMB": 0}},
    }
    assert [a.name for a in await store.list(Agent)] == ["good"]
    (broken,) = await store.list_broken(Agent)
    assert broken.name == "bad" and "memoryMB" in broken.error
    with pytest.raises(InvalidObject, match="memoryMB"):
        await store.get(Agent, "bad")
    kmock.objects[AGENTS, "default", "bad"].patch({"status": {"phase": "Failed", "message": "bad spec"}})
    status = await store.get_status(Agent, "bad")
    assert status is not None and status.phase == Phase.FAILED and status.message == "bad spec"


async def test_watch_reports_changes_after_it_starts(store: KubeStore) -> None:
    await store.create(manifest("before"))
    events = store.watch(Agent)
    seen: list[tuple[str, str]] = []

    async def collect() -> None:
        async for event in events:
            seen.append((event.type, event.name))
            if event.type == "DELETED":
                return

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.2)  # let the watch request reach the server
    await store.create(manifest("after"))
    await store.delete(Agent, "after")
    await asyncio.wait_for(task, timeout=10)
    # kmock replays existing objects at the start of every watch; a real server does not when
    # resourceVersion is given. Either way the new object's lifecycle is reported in order.
    after = [t for t, n in seen if n == "after"]
    assert after == ["ADDED", "DELETED"]
