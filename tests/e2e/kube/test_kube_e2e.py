"""Kubernetes mode end to end, against a real API server (CLAWPEN_E2E_KUBECONFIG).

One scenario in order, the way a user meets it: CRDs install and validate; `kubectl apply` of an
Agent (a plain POST of the manifest, which is all kubectl does) makes the operator create the
StatefulSet, Service, Secret and NetworkPolicy as specified, owned by the Agent; status is
written; a spec change rolls through; `state: Stopped` scales to zero; an operator restart changes
nothing; optimistic concurrency answers 409; the gateway in kube-store mode creates, lists and
deletes agents; deleting an Agent removes its workload and releases our finalizer.

No kubelet is needed: pods may stay Pending (a bare API server + controller-manager runs none), so
phases are checked as "written and consistent", not "Running".
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.kube import objects
from controller.kube.client import ApiException, RawApi
from controller.operator import FINALIZER
from controller.plan import LABEL_PLAN_HASH
from controller.resources import Agent, AgentStatus, Phase
from controller.store.base import Conflict

if not os.environ.get("CLAWPEN_E2E_KUBECONFIG"):
    pytest.skip(
        "Kubernetes e2e: set CLAWPEN_E2E_KUBECONFIG to the kubeconfig of a disposable cluster to run it",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.kube, pytest.mark.asyncio(loop_scope="module")]

GROUP = "/apis/clawpen.dev/v1alpha1"
ROOT = Path(__file__).resolve().parents[3]


async def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll a check (sync or async) until it is truthy; on timeout fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name, "labels": {"team": "e2e"}},
        "spec": {"provider": "openai", "model": "gpt-4o", "secrets": ["E2E_TOKEN"], **spec},
    }


def paths(namespace: str, name: str) -> dict[str, str]:
    workload = objects.workload_name(name)
    return {
        "StatefulSet": f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{workload}",
        "Service": f"/api/v1/namespaces/{namespace}/services/{workload}",
        "Secret": f"/api/v1/namespaces/{namespace}/secrets/{objects.secret_name(name)}",
        "NetworkPolicy": f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{workload}",
    }


async def kubectl_apply(raw: RawApi, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    """`kubectl apply -f` when kubectl is installed (the user's way), else the same POST it makes."""
    kubectl = shutil.which("kubectl")
    path = f"{GROUP}/namespaces/{namespace}/agents"
    if kubectl is None:
        result: dict[str, Any] = await raw.create(path, doc)
        return result
    proc = await asyncio.create_subprocess_exec(
        kubectl,
        "--kubeconfig",
        os.environ["CLAWPEN_E2E_KUBECONFIG"],
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(yaml.safe_dump(doc).encode())
    assert proc.returncode == 0, err.decode()
    stored: dict[str, Any] = await raw.get(f"{path}/{doc['metadata']['name']}")
    return stored


async def get_or_none(raw: RawApi, path: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = await raw.get(path)
        return result
    except ApiException as err:
        if err.status == 404:
            return None
        raise


async def test_crds_are_established_with_printer_columns(raw: RawApi, crds: list[str]) -> None:
    assert set(crds) == {"agents.clawpen.dev", "teams.clawpen.dev"}
    crd = await raw.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/agents.clawpen.dev")
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Phase", "Provider", "Model", "Ready", "Age"]
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("NonStructuralSchema", "False") != "True"


async def test_the_api_server_refuses_what_pydantic_refuses(
    raw: RawApi, crds: list[str], namespace: str
) -> None:
    bad = manifest("bad-memory", resources={"memoryMB": 0})
    with pytest.raises(ApiException) as info:
        await raw.create(f"{GROUP}/namespaces/{namespace}/agents", bad)
    assert info.value.status == 422 and "memoryMB" in (info.value.body or "")
    bad_name = manifest("Not_A_Label")
    with pytest.raises(ApiException) as info:
        await raw.create(f"{GROUP}/namespaces/{namespace}/agents", bad_name)
    assert info.value.status == 422


async def test_apply_creates_the_workload_as_specified(raw: RawApi, cluster: dict[str, Any]) -> None:
    ns = cluster["namespace"]
    agent = await kubectl_apply(raw, ns, manifest("finn"))
    uid = agent["metadata"]["uid"]
    p = paths(ns, "finn")
    sts = await eventually(lambda: get_or_none(raw, p["StatefulSet"]), what="StatefulSet")
    assert sts["spec"]["replicas"] == 1
    assert sts["metadata"]["ownerReferences"][0]["uid"] == uid
    pod = sts["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["CLAWPEN_MODEL"] == "gpt-4o"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data", "workspace"]
    service = await eventually(lambda: get_or_none(raw, p["Service"]), what="Service")
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 8080
    secret = await eventually(lambda: get_or_none(raw, p["Secret"]), what="Secret")
    assert base64.b64decode(secret["data"]["E2E_TOKEN"]) == b"e2e-secret-value"
    policy = await eventually(lambda: get_or_none(raw, p["NetworkPolicy"]), what="NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    for obj in (service, secret, policy):
        assert obj["metadata"]["ownerReferences"][0]["uid"] == uid
    stored = await raw.get(f"{GROUP}/namespaces/{ns}/agents/finn")
    assert FINALIZER in stored["metadata"]["finalizers"]


async def test_status_is_written(raw: RawApi, cluster: dict[str, Any]) -> None:
    ns = cluster["namespace"]

    async def status() -> dict[str, Any] | None:
        agent = await raw.get(f"{GROUP}/namespaces/{ns}/agents/finn")
        st = agent.get("status") or {}
        if st.get("observedGeneration") == agent["metadata"]["generation"] and st.get("conditions"):
            return st
        return None

    st = await eventually(status, what="status with observedGeneration")
    assert st["phase"] in ("Pending", "Starting", "Running")
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] in ("True", "False") and ready["reason"]
    assert st.get("planHash")


async def test_spec_change_updates_the_statefulset(raw: RawApi, cluster: dict[str, Any]) -> None:
    ns = cluster["namespace"]
    before = await raw.get(paths(ns, "finn")["StatefulSet"])
    agent = await raw.merge_patch(f"{GROUP}/namespaces/{ns}/agents/finn", {"spec": {"model": "gpt-4o-mini"}})
    generation = agent["metadata"]["generation"]
    assert generation >= 2

    async def updated() -> dict[str, Any] | None:
        sts = await raw.get(paths(ns, "finn")["StatefulSet"])
        env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
        return sts if env.get("CLAWPEN_MODEL") == "gpt-4o-mini" else None

    sts = await eventually(updated, what="the new model in the pod template")
    assert sts["metadata"]["labels"][LABEL_PLAN_HASH] != before["metadata"]["labels"][LABEL_PLAN_HASH]
    assert sts["metadata"]["uid"] == before["metadata"]["uid"]  # patched in place, not re-created

    async def observed() -> bool:
        a = await raw.get(f"{GROUP}/namespaces/{ns}/agents/finn")
        return bool((a.get("status") or {}).get("observedGeneration") == generation)

    await eventually(observed, what="observedGeneration to follow")


async def test_stopped_scales_to_zero(raw: RawApi, cluster: dict[str, Any]) -> None:
    ns = cluster["namespace"]
    await raw.merge_patch(f"{GROUP}/namespaces/{ns}/agents/finn", {"spec": {"state": "Stopped"}})

    async def stopped() -> bool:
        sts = await raw.get(paths(ns, "finn")["StatefulSet"])
        agent = await raw.get(f"{GROUP}/namespaces/{ns}/agents/finn")
        return sts["spec"]["replicas"] == 0 and (agent.get("status") or {}).get("phase") == "Stopped"

    await eventually(stopped, what="0 replicas and phase Stopped")


async def test_operator_restart_causes_no_churn(raw: RawApi, cluster: dict[str, Any]) -> None:
    ns, handle = cluster["namespace"], cluster["operator"]
    p = paths(ns, "finn")
    agent_path = f"{GROUP}/namespaces/{ns}/agents/finn"

    async def versions() -> dict[str, Any]:
        # Workload objects must not be written at all. The Agent may carry kopf's bookkeeping
        # annotations, so for it the spec generation and the status are compared instead.
        found: dict[str, Any] = {
            kind: (await raw.get(path))["metadata"]["resourceVersion"] for kind, path in p.items()
        }
        agent = await raw.get(agent_path)
        found["Agent"] = (agent["metadata"]["generation"], agent.get("status"))
        return found

    before = await versions()
    await handle.restart()
    calls = handle.reconciler.calls
    # Wait for the resumed handler and at least two resync passes over the agent.
    await eventually(lambda: handle.reconciler.calls >= calls + 3, what="reconciles after the restart")
    assert await versions() == before


async def test_stale_resource_version_is_a_409(cluster: dict[str, Any]) -> None:
    store = cluster["store"]
    agent = await store.get(Agent, "finn")
    generation = agent.metadata.generation
    await store.update_status(Agent, "finn", agent.status or AgentStatus(phase=Phase.STOPPED))
    assert (await store.get(Agent, "finn")).metadata.generation == generation  # status never bumps it
    fresh = await store.get(Agent, "finn")
    fresh.spec.tags = ["e2e"]
    await store.replace(fresh)
    agent.spec.tags = ["stale"]
    with pytest.raises(Conflict):
        await store.replace(agent)
    assert (await store.get(Agent, "finn")).metadata.generation == generation + 1


async def test_gateway_in_kube_store_mode(
    cluster: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    import httpx

    from api.app import create_app
    from controller.catalog import load_catalog
    from controller.settings import Settings

    ns = cluster["namespace"]
    home = tmp_path_factory.mktemp("gateway-home")
    settings = Settings(
        home=home, instance=cluster["instance"], store="kube", runtime="kubernetes", namespace=ns
    )
    app = create_app(
        settings,
        cluster["store"],
        cluster["runtime"],
        load_catalog(ROOT / "templates"),
        env={"CLAWPEN_ADMIN_PASSWORD": "e2e-admin-password-long"},
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gw") as http,
    ):
        login = await http.post("/auth/login", json={"password": "e2e-admin-password-long"})
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        created = await http.post(
            "/api/agents",
            json={"name": "via-gateway", "config": {"llm_provider": "openai", "llm_model": "gpt-4o"}},
        )
        assert created.status_code in (200, 201), created.text
        listed = await http.get("/api/agents")
        assert "via-gateway" in listed.text
        await eventually(
            lambda: workload_exists(cluster, "via-gateway"), what="the operator to create its StatefulSet"
        )
        deleted = await http.delete("/api/agents/via-gateway")
        assert deleted.status_code in (200, 202, 204), deleted.text

    async def gone() -> bool:
        return not [a for a in await cluster["store"].list(Agent, ns) if a.name == "via-gateway"]

    await eventually(gone, what="the gateway-created Agent to be deleted")


async def workload_exists(cluster: dict[str, Any], name: str) -> bool:
    observed = await cluster["runtime"].observe(f"{cluster['namespace']}/{name}")
    return bool(observed.exists)


async def test_owner_references_cascade_without_the_operator(raw: RawApi, cluster: dict[str, Any]) -> None:
    """The garbage collector alone removes an agent's objects once its Agent is gone."""
    ns, handle = cluster["namespace"], cluster["operator"]
    await kubectl_apply(raw, ns, manifest("orphan"))
    p = paths(ns, "orphan")
    await eventually(lambda: get_or_none(raw, p["StatefulSet"]), what="the StatefulSet of orphan")
    await eventually(lambda: get_or_none(raw, p["NetworkPolicy"]), what="the NetworkPolicy of orphan")
    await handle.shutdown()
    try:
        agent_path = f"{GROUP}/namespaces/{ns}/agents/orphan"
        await raw.merge_patch(agent_path, {"metadata": {"finalizers": None}})
        await raw.delete(agent_path)
        for kind, path in p.items():

            async def absent(path: str = path) -> bool:
                return await get_or_none(raw, path) is None

            await eventually(absent, timeout=90, what=f"the garbage collector to delete the {kind}")
    finally:
        await handle.start()


async def test_delete_removes_the_workload_and_releases_the_finalizer(
    raw: RawApi, cluster: dict[str, Any]
) -> None:
    ns = cluster["namespace"]
    await raw.delete(f"{GROUP}/namespaces/{ns}/agents/finn")

    async def agent_gone() -> bool:
        return await get_or_none(raw, f"{GROUP}/namespaces/{ns}/agents/finn") is None

    await eventually(agent_gone, what="the Agent to be gone (finalizer released)")
    for kind, path in paths(ns, "finn").items():

        async def absent(path: str = path) -> bool:
            return await get_or_none(raw, path) is None

        await eventually(absent, what=f"{kind} to be deleted")
