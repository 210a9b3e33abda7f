"""KubernetesRuntime against kmock: the objects it sends, and how it reads them back.

kmock stores objects and merges patches but runs no controllers (no pods appear by themselves, no
garbage collection), so the tests play the kubelet's part by writing pod objects; what a real
cluster does with the objects is covered by tests/e2e/kube.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import kmock
import pytest

from controller.kube import objects
from controller.kube.client import api_client_for
from controller.plan import LABEL_PLAN_HASH, Mount, SecretMount, WorkloadPlan
from controller.runtime.base import RuntimeError_
from controller.runtime.kubernetes import KubernetesRuntime, parse_log_line

STS = "apps/v1/statefulsets"
SVC = "v1/services"
SECRETS = "v1/secrets"
NETPOL = "networking.k8s.io/v1/networkpolicies"
PODS = "v1/pods"
AGENTS = "clawpen.dev/v1alpha1/agents"


@pytest.fixture
async def runtime(kmock: kmock.KubernetesEmulator) -> AsyncIterator[KubernetesRuntime]:
    for resource in (STS, SVC, SECRETS, NETPOL, PODS, AGENTS, "v1/persistentvolumeclaims"):
        kmock.resources[resource] = kmock.ResourceInfo(namespaced=True)
    rt = KubernetesRuntime(api_client_for(str(kmock.url)), instance="t-kmock")
    yield rt
    await rt.close()


def plan(running: bool = True, model: str = "gpt-4o", secrets: tuple[SecretMount, ...] = ()) -> WorkloadPlan:
    return WorkloadPlan(
        namespace="default",
        name="finn",
        instance="t-kmock",
        image="clawpen/agent:test",
        env={"CLAWPEN_MODEL": model},
        memory_mb=512,
        cpu=0.5,
        restart_policy="unless-stopped",
        mounts=(),
        secrets=secrets,
        running=running,
    )


def pod_for(p: WorkloadPlan, state: dict, ready: bool = False, last: dict | None = None) -> dict:
    status = {"name": "agent", "state": state, "restartCount": 2 if last else 0}
    if last:
        status["lastState"] = {"terminated": last}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "agent-finn-0", "namespace": "default", "labels": p.owner_labels()},
        "spec": {"containers": [{"name": "agent", "resources": {"limits": {"memory": "512Mi"}}}]},
        "status": {
            "phase": "Running" if "running" in state else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [status],
        },
    }


async def test_apply_creates_the_four_objects_owned_by_the_agent(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator
) -> None:
    kmock.objects[AGENTS, "default", "finn"] = {
        "metadata": {"name": "finn", "namespace": "default", "uid": "u-1"}
    }
    secret = SecretMount(name="OPENAI_API_KEY", scope="agent", version="v1")
    p = plan(secrets=(secret,))
    observed = await runtime.apply(p, {"OPENAI_API_KEY": b"sk-kmock"})
    sts = kmock.objects[STS, "default", "agent-finn"]
    assert sts["spec"]["replicas"] == 1
    assert sts["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert sts["metadata"]["labels"][LABEL_PLAN_HASH] == p.hash
    assert base64.b64decode(
        kmock.objects[SECRETS, "default", "agent-finn-secrets"]["data"]["OPENAI_API_KEY"]
    ) == (b"sk-kmock")
    assert kmock.objects[SVC, "default", "agent-finn"]["spec"]["ports"][0]["port"] == 8080
    assert kmock.objects[NETPOL, "default", "agent-finn"]["spec"]["policyTypes"] == ["Ingress"]
    assert observed.exists and observed.plan_hash == p.hash
    assert (observed.running, observed.state, observed.healthy) == (True, "pending", None)  # no pod yet
    assert observed.endpoint == "http://agent-finn.default.svc.cluster.local:8080"


async def test_apply_without_an_agent_resource_has_no_owner(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator
) -> None:
    await runtime.apply(plan())
    assert "ownerReferences" not in kmock.objects[STS, "default", "agent-finn"]["metadata"]


async def test_reapply_patches_template_and_drops_removed_secret_keys(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator
) -> None:
    one = SecretMount(name="A", scope="agent", version="v1")
    two = SecretMount(name="B", scope="agent", version="v1")
    await runtime.apply(plan(secrets=(one, two)), {"A": b"a", "B": b"b"})
    new = plan(model="gpt-5", secrets=(one,))
    observed = await runtime.apply(new, {"A": b"a2"})
    assert observed.plan_hash == new.hash
    assert set(kmock.objects[SECRETS, "default", "agent-finn-secrets"]["data"]) == {"A"}
    env = kmock.objects[STS, "default", "agent-finn"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "CLAWPEN_MODEL", "value": "gpt-5"} in env
    patches = [r for r in kmock["patch"] if r.url.path.endswith("/statefulsets/agent-finn")]
    assert patches and "volumeClaimTemplates" not in patches[-1].data["spec"]  # immutable: never sent


async def test_reapply_with_unchanged_secrets_keeps_them(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator
) -> None:
    one = SecretMount(name="A", scope="agent", version="v1")
    await runtime.apply(plan(secrets=(one,)), {"A": b"a"})
    await runtime.apply(plan(model="gpt-5", secrets=(one,)), {"A": b"a"})
    data = kmock.objects[SECRETS, "default", "agent-finn-secrets"]["data"]
    assert base64.b64decode(data["A"]) == b"a"


async def test_observe_maps_pod_states(runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator) -> None:
    p = plan()
    await runtime.apply(p)
    pod_key = (PODS, "default", "agent-finn-0")
    kmock.objects[pod_key] = pod_for(p, {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, ready=True)
    running = await runtime.observe("default/finn")
    assert running.running and running.healthy and running.started_at is not None
    kmock.objects[pod_key] = pod_for(
        p, {"waiting": {"reason": "CrashLoopBackOff"}}, last={"reason": "OOMKilled", "exitCode": 137}
    )
    crashed = await runtime.observe("default/finn")
    assert (crashed.running, crashed.state, crashed.oom_killed, crashed.exit_code) == (
        False,
        "restarting",
        True,
        137,
    )
    assert crashed.restart_count == 2


async def test_start_stop_scale_and_remove_deletes_everything(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator
) -> None:
    await runtime.apply(plan())
    await runtime.stop("default/finn")
    assert kmock.objects[STS, "default", "agent-finn"]["spec"]["replicas"] == 0
    assert (await runtime.observe("default/finn")).state == "stopped"
    await runtime.start("default/finn")
    assert kmock.objects[STS, "default", "agent-finn"]["spec"]["replicas"] == 1
    owned = await runtime.list_owned()
    assert [o.key for o in owned] == ["default/finn"]
    await runtime.remove("default/finn")
    assert not (await runtime.observe("default/finn")).exists
    await runtime.remove("default/finn")  # idempotent


async def test_someone_elses_objects_are_not_adopted(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator
) -> None:
    kmock.objects[SVC, "default", "agent-finn"] = {"metadata": {"name": "agent-finn", "namespace": "default"}}
    with pytest.raises(RuntimeError_, match="not managed by this Claw Pen instance"):
        await runtime.apply(plan())


async def test_host_paths_fail_with_a_reason(runtime: KubernetesRuntime) -> None:
    bad = WorkloadPlan(**{**plan().__dict__, "mounts": (Mount("/srv", "/srv"),)})
    with pytest.raises(RuntimeError_) as info:
        await runtime.apply(bad)
    assert info.value.reason == "UnsupportedPlan"


async def test_logs_stats_need_a_pod(runtime: KubernetesRuntime) -> None:
    await runtime.apply(plan(running=False))
    with pytest.raises(RuntimeError_, match="has no pod"):
        await runtime.stats("default/finn")


def test_log_lines_with_kubelet_timestamps() -> None:
    line = parse_log_line("2026-11-24T05:00:01.123456789Z ERROR provider refused the key")
    assert line.timestamp is not None and line.timestamp.microsecond == 123456
    assert line.level == "error" and line.message == "ERROR provider refused the key"
    assert parse_log_line("no timestamp here").timestamp is None


def test_quantities() -> None:
    from controller.kube.quantity import cpu_cores, memory_bytes

    assert memory_bytes("512Mi") == 512 * 2**20 and cpu_cores("250m") == 0.25
    assert cpu_cores("1500000n") == pytest.approx(0.0015)
    with pytest.raises(ValueError, match="quantity"):
        memory_bytes("lots")


def test_workload_names_are_used_consistently() -> None:
    assert objects.workload_name("finn") == "agent-finn"


async def test_events_report_pod_changes_as_actions(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator
) -> None:
    import asyncio

    p = plan()
    seen: list[tuple[str, str]] = []

    async def collect() -> None:
        async for event in runtime.events():
            seen.append((event.key, event.action))
            if event.action == "oom":
                return

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.2)  # the watch request reaches the server first
    body = pod_for(p, {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, ready=True)
    api = runtime.raw
    assert api is not None
    await api.create("/api/v1/namespaces/default/pods", body)
    oom = pod_for(
        p, {"waiting": {"reason": "CrashLoopBackOff"}}, last={"reason": "OOMKilled", "exitCode": 137}
    )
    await api.merge_patch("/api/v1/namespaces/default/pods/agent-finn-0", {"status": oom["status"]})
    await asyncio.wait_for(task, timeout=10)
    assert seen == [("default/finn", "start"), ("default/finn", "oom")]
