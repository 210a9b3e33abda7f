"""The operator's kopf wiring, run for real against kmock (kopf's Kubernetes API emulator).

kopf logs in, discovers the Agent resource, lists and watches it, adds our finalizer, calls the
handlers, and on deletion calls runtime.remove before releasing the finalizer. The reconciler here
is the smallest real one: it reads the Agent through KubeStore and writes its status back, so what
is checked is exactly the operator's job (which call happens when), nothing of the reconcile core.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kmock
import pytest

from controller import operator
from controller.kube.client import api_client_for
from controller.reconcile import ReconcileResult
from controller.resources import Agent, AgentStatus, DesiredState, Phase
from controller.store.kube import KubeStore
from tests.support.kopf_kmock import AGENTS, declare_agents, eventually, posted_events, running_operator


@dataclass
class StatusWritingReconciler:
    store: KubeStore
    calls: list[str] = field(default_factory=list)
    liveness: str = ""

    async def reconcile(self, key: str) -> ReconcileResult | None:
        self.calls.append(key)
        namespace, _, name = key.partition("/")
        if name.startswith("nosecret"):  # what the core answers for an agent whose secret is missing
            return ReconcileResult(
                action="failed", phase=Phase.FAILED, reason="SecretMissing", message="secret OPENAI_API_KEY is missing"
            )
        agent = await self.store.get(Agent, name, namespace)
        phase = Phase.STOPPED if agent.spec.state == "Stopped" else Phase.RUNNING
        await self.store.update_status(Agent, name, AgentStatus(phase=phase), namespace)


@dataclass
class RecordingRuntime:
    removed: list[str] = field(default_factory=list)

    async def remove(self, key: str, *, volumes: bool = False) -> None:
        self.removed.append(key)


def agent_body(name: str, state: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        # kmock does not assign resourceVersions; kopf's finalizer patch tests for one.
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
        "spec": {"provider": "openai", "model": "gpt-4o", "state": state},
    }


@pytest.fixture
async def running(
    kmock: kmock.KubernetesEmulator,
) -> AsyncIterator[tuple[StatusWritingReconciler, RecordingRuntime]]:
    declare_agents(kmock)
    store = KubeStore(api_client_for(str(kmock.url)))
    reconciler, runtime = StatusWritingReconciler(store), RecordingRuntime()
    ctx = operator.OperatorContext(reconciler=reconciler, runtime=runtime, resync_seconds=0.5)  # type: ignore[arg-type]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    liveness = f"http://127.0.0.1:{port}/healthz"
    reconciler.liveness = liveness
    try:
        async with running_operator(ctx, kmock, liveness=liveness):
            yield reconciler, runtime
    finally:
        await store.close()


async def seed(server: kmock.KubernetesEmulator, name: str) -> None:
    """Store an Agent; kmock announces objects set directly on no watch, so touch it via the API."""
    server.objects[AGENTS, "default", name] = agent_body(name)
    store = KubeStore(api_client_for(str(server.url)))
    try:
        await store.update_status(Agent, name, AgentStatus())
    finally:
        await store.close()


async def test_create_reconciles_and_adds_our_finalizer(
    running: tuple[StatusWritingReconciler, RecordingRuntime], kmock: kmock.KubernetesEmulator
) -> None:
    reconciler, _ = running
    await seed(kmock, "finn")
    await eventually(lambda: "default/finn" in reconciler.calls)
    obj = kmock.objects[AGENTS, "default", "finn"]
    await eventually(lambda: operator.FINALIZER in obj.get("metadata", {}).get("finalizers", []))
    await eventually(lambda: obj.get("status", {}).get("phase") == "Running")
    async with aiohttp.ClientSession() as http, http.get(reconciler.liveness) as probe:
        assert probe.status == 200  # the Deployment's livenessProbe target
    annotations = obj["metadata"].get("annotations", {})
    assert annotations and all(k.startswith("clawpen.dev/") for k in annotations), annotations
    assert all(len(k.split("/", 1)[1]) <= 63 and "<" not in k for k in annotations), annotations
    assert "kopf" not in obj.get("status", {})


async def test_daemon_resyncs_and_delete_removes_then_releases(
    running: tuple[StatusWritingReconciler, RecordingRuntime], kmock: kmock.KubernetesEmulator
) -> None:
    reconciler, runtime = running
    store = KubeStore(api_client_for(str(kmock.url)))
    try:
        await seed(kmock, "rhea")
        # The create handler, then the daemon's resyncs.
        await eventually(lambda: reconciler.calls.count("default/rhea") >= 3, what=lambda: reconciler.calls)
        await store.delete(Agent, "rhea")
        await eventually(lambda: runtime.removed == ["default/rhea"])
        await eventually(
            lambda: (
                ("clawpen.dev/v1alpha1/agents", "default", "rhea") not in kmock.objects
                or kmock.objects[AGENTS, "default", "rhea"].deleted
            )
        )
    finally:
        await store.close()


async def test_spec_update_reconciles_promptly(
    running: tuple[StatusWritingReconciler, RecordingRuntime], kmock: kmock.KubernetesEmulator
) -> None:
    reconciler, _ = running
    store = KubeStore(api_client_for(str(kmock.url)))
    try:
        await seed(kmock, "sam")
        created = await store.get(Agent, "sam")
        await eventually(lambda: kmock.objects[AGENTS, "default", "sam"].get("status", {}).get("phase") == "Running")
        created.spec.state = DesiredState.STOPPED
        await store.replace(created)
        await eventually(lambda: kmock.objects[AGENTS, "default", "sam"].get("status", {}).get("phase") == "Stopped")
    finally:
        await store.close()


async def test_requeue_hints_are_bounded() -> None:
    @dataclass
    class Fixed:
        requeue_after: float | None

    @dataclass
    class Hinting:
        hint: float | None
        fail: BaseException | None = None

        async def reconcile(self, key: str) -> Fixed:
            if self.fail is not None:
                raise self.fail
            return Fixed(self.hint)

    def ctx(reconciler: Hinting) -> operator.OperatorContext:
        return operator.OperatorContext(reconciler=reconciler, runtime=RecordingRuntime(), resync_seconds=30)  # type: ignore[arg-type]

    assert await ctx(Hinting(None)).reconcile("default/a") == 30  # steady: the resync period
    assert await ctx(Hinting(0.5)).reconcile("default/a") == 2.0  # starting: not faster than min_requeue
    assert await ctx(Hinting(600)).reconcile("default/a") == 30  # never slower than a resync
    failing = Hinting(None, fail=RuntimeError("a bug"))
    assert await ctx(failing).reconcile("default/a") == 5.0  # logged and retried, the daemon lives on


async def test_failures_and_actions_become_kubernetes_events_once(
    running: tuple[StatusWritingReconciler, RecordingRuntime], kmock: kmock.KubernetesEmulator
) -> None:
    reconciler, _ = running
    await seed(kmock, "nosecret")
    # The create handler and then several daemon resyncs, all failing the same way...
    await eventually(lambda: reconciler.calls.count("default/nosecret") >= 4, what=lambda: reconciler.calls)
    events = [e for e in posted_events(kmock) if e.get("reason") == "SecretMissing"]
    # ...post one Warning Event on the Agent (kubectl describe shows it), not one per resync.
    assert len(events) == 1, posted_events(kmock)
    event = events[0]
    assert event["type"] == "Warning" and "OPENAI_API_KEY" in event["message"]
    assert event["involvedObject"]["kind"] == "Agent" and event["involvedObject"]["name"] == "nosecret"


async def test_not_ready_agents_are_rechecked_with_backoff() -> None:
    @dataclass
    class Starting:
        async def reconcile(self, key: str) -> ReconcileResult:
            return ReconcileResult(action="none", requeue_after=1.0)

    ctx = operator.OperatorContext(reconciler=Starting(), runtime=RecordingRuntime(), resync_seconds=30)  # type: ignore[arg-type]
    delays = [await ctx.reconcile("default/stuck") for _ in range(6)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 30, 30]  # doubling from min_requeue, capped at the resync period
    ctx.changed("default/stuck")  # a spec change: look quickly again
    assert await ctx.reconcile("default/stuck") == 2.0


async def test_uninstall_removes_workloads_then_releases_finalizers(kmock: kmock.KubernetesEmulator) -> None:
    """`clawpen operator --uninstall`: without it, Agents keep our finalizer once the operator is gone and
    `kubectl delete -k deploy/kubernetes` leaves the CRD Terminating for good."""
    kmock.resources[AGENTS] = kmock.ResourceInfo(kind="Agent", namespaced=True, subresources={"status"})
    for namespace, name in (("default", "finn"), ("team-b", "rhea")):
        body = agent_body(name)
        body["metadata"].update(namespace=namespace, finalizers=[operator.FINALIZER, "other.example/keep"])
        kmock.objects[AGENTS, namespace, name] = body
    store, runtime = KubeStore(api_client_for(str(kmock.url))), RecordingRuntime()
    try:
        released = await operator.uninstall(store, runtime)
    finally:
        await store.close()
    assert sorted(released) == ["default/finn", "team-b/rhea"]
    assert sorted(runtime.removed) == ["default/finn", "team-b/rhea"]
    for namespace, name in (("default", "finn"), ("team-b", "rhea")):
        assert kmock.objects[AGENTS, namespace, name]["metadata"]["finalizers"] == ["other.example/keep"]


async def test_pod_and_statefulset_changes_wake_a_not_ready_agent(kmock: kmock.KubernetesEmulator) -> None:
    """A not-ready agent's re-checks back off (up to the resync period); its Pod or StatefulSet
    changing (scheduled, Ready, crashed) wakes it at once, so readiness shows without polling.
    Objects of another installation, or not ours, wake nothing."""
    declare_agents(kmock)
    for resource, kind in (("v1/pods", "Pod"), ("apps/v1/statefulsets", "StatefulSet")):
        kmock.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=True, verbs={"list", "watch", "create"})

    @dataclass
    class Starting:
        calls: list[str] = field(default_factory=list)

        async def reconcile(self, key: str) -> ReconcileResult:
            self.calls.append(key)
            return ReconcileResult(action="none", requeue_after=1.0)  # "not ready yet, look again soon"

    reconciler = Starting()
    # Without a wake the next look would be a minute away (resync) or 30 s (the smallest backoff).
    ctx = operator.OperatorContext(
        reconciler=reconciler,  # type: ignore[arg-type]
        runtime=RecordingRuntime(),  # type: ignore[arg-type]
        resync_seconds=60,
        min_requeue=30,
        instance="t-wake",
    )

    def labels(instance: str = "t-wake", name: str = "slow") -> dict[str, str]:
        return {
            "clawpen.dev/managed-by": "clawpen",
            "clawpen.dev/kind": "Agent",
            "clawpen.dev/instance": instance,
            "clawpen.dev/namespace": "default",
            "clawpen.dev/name": name,
        }

    async def create(http: aiohttp.ClientSession, path: str, kind: str, name: str, obj_labels: dict[str, str]) -> None:
        body = {"kind": kind, "metadata": {"name": name, "namespace": "default", "labels": obj_labels}}
        async with http.post(f"{str(kmock.url).rstrip('/')}{path}", json=body) as answer:
            assert answer.status < 300, await answer.text()

    async with running_operator(ctx, kmock):
        await seed(kmock, "slow")
        obj = kmock.objects[AGENTS, "default", "slow"]
        # kopf has handled the Agent (finalizer added, create handler done): the daemon now sleeps.
        await eventually(
            lambda: "clawpen.dev/last-handled-configuration" in obj.get("metadata", {}).get("annotations", {})
        )
        await asyncio.sleep(1.0)
        looks = len(reconciler.calls)
        assert looks >= 1

        def woke(n: int) -> bool:
            return len(reconciler.calls) >= looks + n

        async with aiohttp.ClientSession() as http:
            pods = "/api/v1/namespaces/default/pods"
            await create(http, pods, "Pod", "other-install-0", labels(instance="t-elsewhere"))
            await create(http, pods, "Pod", "not-ours-0", {"app": "slow"})
            await asyncio.sleep(1.5)
            assert not woke(1), f"another installation's pod woke our agent: {reconciler.calls}"
            await create(http, pods, "Pod", "agent-slow-0", labels())
            await eventually(lambda: woke(1), timeout=10, what=lambda: reconciler.calls)
            await asyncio.sleep(0.5)
            looks = len(reconciler.calls)
            await create(http, "/apis/apps/v1/namespaces/default/statefulsets", "StatefulSet", "agent-slow", labels())
            await eventually(lambda: woke(1), timeout=10, what=lambda: reconciler.calls)
        # The wake also reset the backoff: the next safety look is the smallest one, not a doubled one.
        assert ctx.waiting.get("default/slow") == 1
