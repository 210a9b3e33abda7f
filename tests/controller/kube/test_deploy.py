"""deploy/kubernetes: what `kubectl apply -k` would install, checked without kubectl or a cluster.

- the kustomization's resources exist and every object validates strictly against the Kubernetes
  1.x OpenAPI schemas (kubernetes-validate), so a typo in a field name fails here, not at apply;
- the wiring holds: bindings name existing ServiceAccounts and roles, Services select the pods they
  front, the operator runs one replica with the Recreate strategy;
- RBAC is least privilege in both directions: no wildcards, and every request the operator's and
  the gateway's code actually makes (recorded by kmock while they work) is allowed by their role.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes_validate
import pytest
import yaml

from controller.kube.client import api_client_for
from controller.plan import SecretMount, WorkloadPlan
from controller.resources import Agent, AgentStatus, Phase, parse_resource
from controller.runtime.kubernetes import KubernetesRuntime
from controller.store.kube import KubeStore

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "kubernetes"
SYSTEM_NS = "clawpen-system"
K8S_VERSION = kubernetes_validate.latest_version()


def kustomize(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The objects a kustomization lists (resources only; this project uses no patches)."""
    config = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert config["kind"] == "Kustomization"
    for entry in config.get("resources", []):
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml lists missing {entry}"
        if path.is_dir():
            assert (path / "kustomization.yaml").exists(), f"{entry} is a directory without a kustomization"
            yield from kustomize(path)
        else:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    yield path, doc


OBJECTS = list(kustomize(DEPLOY))


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in OBJECTS if doc["kind"] == kind}


def test_installs_everything_the_issue_lists() -> None:
    kinds = {doc["kind"] for _, doc in OBJECTS}
    assert {
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
    } <= kinds
    assert set(by_kind("CustomResourceDefinition")) == {"agents.clawpen.dev", "teams.clawpen.dev"}
    assert set(by_kind("Deployment")) == {"clawpen-operator", "clawpen-gateway"}


@pytest.mark.parametrize("doc", [d for _, d in OBJECTS], ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_every_object_validates_strictly(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    if doc["kind"] == "RoleBinding" and doc["metadata"]["name"] == "clawpen-agent-secrets":
        return  # lives in a namespace that holds Agents (see test_operator_reads_secrets_only_in_...)
    if doc["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
        assert doc["metadata"].get("namespace") == SYSTEM_NS


def test_names_are_unique() -> None:
    keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for _, d in OBJECTS]
    assert len(keys) == len(set(keys))


def test_operator_is_a_single_replica_recreated_never_rolled() -> None:
    operator = by_kind("Deployment")["clawpen-operator"]
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "operator"


def test_operator_names_the_agent_image() -> None:
    """Without CLAWPEN_IMAGE every agent would run the built-in default tag, which no cluster can pull."""
    from controller import __version__

    operator = by_kind("Deployment")["clawpen-operator"]
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env.get("CLAWPEN_IMAGE") == f"clawpen/agent:{__version__}"


def test_wiring_between_objects() -> None:
    accounts = set(by_kind("ServiceAccount"))
    roles = by_kind("ClusterRole")
    for binding in by_kind("ClusterRoleBinding").values():
        assert binding["roleRef"]["name"] in roles
        for subject in binding["subjects"]:
            assert subject["name"] in accounts and subject["namespace"] == SYSTEM_NS
    claims = set(by_kind("PersistentVolumeClaim"))
    for deployment in by_kind("Deployment").values():
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["serviceAccountName"] in accounts
        for volume in pod["spec"]["volumes"]:
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CLAWPEN_STORE"] == "kube" and env["CLAWPEN_RUNTIME"] == "kubernetes"
    gateway_pod = by_kind("Deployment")["clawpen-gateway"]["spec"]["template"]
    service = by_kind("Service")["clawpen-gateway"]
    assert service["spec"]["selector"].items() <= gateway_pod["metadata"]["labels"].items()
    port_names = {p["name"] for p in gateway_pod["spec"]["containers"][0]["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in port_names


def test_operator_and_gateway_share_one_home_on_one_node() -> None:
    """Secrets set through the gateway must be the ones the operator reads (one secret store)."""
    deployments = by_kind("Deployment")
    claims = {}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        home = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/var/lib/clawpen")
        volume = next(v for v in pod["volumes"] if v["name"] == home["name"])
        claims[name] = volume["persistentVolumeClaim"]["claimName"]
    assert claims["clawpen-operator"] == claims["clawpen-gateway"]
    term = deployments["clawpen-gateway"]["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ][0]
    operator_labels = deployments["clawpen-operator"]["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= operator_labels.items()
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_agent_network_policies_admit_the_deployed_components() -> None:
    """The NetworkPolicy objects.py writes must match the labels the deployments really carry."""
    from controller.kube.objects import KubeOptions

    options = KubeOptions()
    assert options.allowed_namespace == SYSTEM_NS
    for name in ("clawpen-operator", "clawpen-gateway"):
        labels = by_kind("Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "clawpen"
        assert labels["app.kubernetes.io/component"] in options.allowed_components


def test_examples_are_a_kustomization_of_valid_resources() -> None:
    docs = [doc for _, doc in kustomize(DEPLOY / "examples")]
    assert docs
    for doc in docs:
        parse_resource(doc)


# ---- RBAC: allowed ⊇ used, and nothing broad -------------------------------------------------------


def test_no_wildcards_and_no_secret_listing() -> None:
    for role in by_kind("ClusterRole").values():
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard in {field}"
            if "secrets" in rule["resources"]:
                assert not {"list", "watch"} & set(rule["verbs"]), "Secrets must be read by name only"


PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))(?P<rest>/.*)?$")


def rbac_request(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str] | None:
    """(apiGroup, resource[/subresource], verb) of one API request, as the authorizer sees it."""
    match = PATH.match(path)
    if not match:
        return None  # /version and discovery are allowed to every authenticated user
    group = match.group("group") or ""
    parts = [p for p in (match.group("rest") or "").split("/") if p]
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:]
    if not parts:
        return None
    resource, name, sub = parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if method == "GET":
        verb = "watch" if query.get("watch") == "true" else ("get" if name else "list")
    assert verb, f"unexpected {method} {path}"
    return group, f"{resource}/{sub}" if sub else resource, verb


def allowed(role: dict[str, Any], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in role["rules"])


def recorded(server: kmock.KubernetesEmulator) -> set[tuple[str, str, str]]:
    used = set()
    for request in server:
        found = rbac_request(str(request.method.value), request.url.path, dict(request.params or {}))
        if found:
            used.add(found)
    return used


def plan() -> WorkloadPlan:
    return WorkloadPlan(
        namespace="default",
        name="finn",
        instance="t-rbac",
        image="clawpen/agent:test",
        env={},
        memory_mb=512,
        cpu=0.5,
        restart_policy="unless-stopped",
        mounts=(),
        secrets=(SecretMount(name="K", scope="agent", version="1"),),
    )


def agent_manifest() -> Agent:
    doc = {"apiVersion": "clawpen.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "finn"}, "spec": {}}
    agent = parse_resource(doc)
    assert isinstance(agent, Agent)
    return agent


def declare(server: kmock.KubernetesEmulator) -> None:
    for resource in (
        "clawpen.dev/v1alpha1/agents",
        "apps/v1/statefulsets",
        "v1/services",
        "v1/secrets",
        "networking.k8s.io/v1/networkpolicies",
        "v1/pods",
        "v1/persistentvolumeclaims",
    ):
        server.resources[resource] = server.ResourceInfo(namespaced=True)


async def test_operator_role_allows_every_request_its_code_makes(kmock: kmock.KubernetesEmulator) -> None:
    declare(kmock)
    store = KubeStore(api_client_for(str(kmock.url)))
    runtime = KubernetesRuntime(api_client_for(str(kmock.url)), instance="t-rbac")
    try:
        await kmock_seed_agent(store)
        await store.get(Agent, "finn")
        await store.list(Agent)
        await store.update_status(Agent, "finn", AgentStatus(phase=Phase.PENDING))
        await runtime.apply(plan(), {"K": b"v"})
        await runtime.apply(WorkloadPlan(**{**plan().__dict__, "env": {"X": "1"}}), {"K": b"v2"})
        await runtime.observe("default/finn")
        await runtime.list_owned()
        await runtime.stop("default/finn")
        await runtime.start("default/finn")
        claim = {"metadata": {"name": "data-agent-finn-0", "namespace": "default", "labels": plan().owner_labels()}}
        kmock.objects["v1/persistentvolumeclaims", "default", "data-agent-finn-0"] = claim
        await runtime.remove("default/finn", volumes=True)
    finally:
        await store.close()
        await runtime.close()
    # Cluster-wide rules, plus the Secret rules bound in `default` (where this scenario's agent lives).
    role = {"rules": by_kind("ClusterRole")["clawpen-operator"]["rules"] + operator_rules_in("default")}
    used = recorded(kmock) - {("clawpen.dev", "agents", "create")}  # the test's own seeding
    missing = sorted(u for u in used if not allowed(role, *u))
    assert missing == []
    # The recording is real: the scenario reached creates, scaling and volume deletion.
    assert {("apps", "statefulsets", "create"), ("", "persistentvolumeclaims", "delete")} <= used


def operator_rules_in(namespace: str) -> list[dict[str, Any]]:
    """Rules the operator holds only in `namespace`, through RoleBindings."""
    rules: list[dict[str, Any]] = []
    for _, doc in OBJECTS:
        if doc["kind"] != "RoleBinding" or doc["metadata"].get("namespace") != namespace:
            continue
        if not any(s.get("name") == "clawpen-operator" for s in doc["subjects"]):
            continue
        rules += by_kind(doc["roleRef"]["kind"])[doc["roleRef"]["name"]]["rules"]
    return rules


def test_operator_reads_secrets_only_in_namespaces_bound_to_it() -> None:
    """Secrets were granted cluster-wide (kube-system's included): now only per namespace, by RoleBinding."""
    operator_role = by_kind("ClusterRole")["clawpen-operator"]
    assert not any("secrets" in rule["resources"] for rule in operator_role["rules"])
    granting = {
        name for name, role in by_kind("ClusterRole").items() if any("secrets" in r["resources"] for r in role["rules"])
    }
    assert granting == {"clawpen-agent-secrets"}
    assert all(b["roleRef"]["name"] not in granting for b in by_kind("ClusterRoleBinding").values())
    assert allowed({"rules": operator_rules_in("default")}, "", "secrets", "get")
    assert not allowed({"rules": operator_rules_in("kube-system")}, "", "secrets", "get")


async def kmock_seed_agent(store: KubeStore) -> None:
    await store.create(agent_manifest())


async def test_gateway_role_allows_every_request_its_code_makes(kmock: kmock.KubernetesEmulator) -> None:
    declare(kmock)
    kmock.resources["metrics.k8s.io/v1beta1/pods"] = kmock.ResourceInfo(namespaced=True)
    store = KubeStore(api_client_for(str(kmock.url)))
    runtime = KubernetesRuntime(api_client_for(str(kmock.url)), instance="t-rbac")
    labels = plan().owner_labels()
    kmock.objects["apps/v1/statefulsets", "default", "agent-finn"] = {
        "metadata": {"name": "agent-finn", "namespace": "default", "labels": labels},
        "spec": {"replicas": 1},
    }
    kmock.objects["v1/pods", "default", "agent-finn-0"] = {
        "metadata": {"name": "agent-finn-0", "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "agent", "resources": {"limits": {"memory": "512Mi"}}}]},
        "status": {"phase": "Running"},
    }
    kmock.objects["metrics.k8s.io/v1beta1/pods", "default", "agent-finn-0"] = {
        "metadata": {"name": "agent-finn-0", "namespace": "default"},
        "containers": [{"name": "agent", "usage": {"cpu": "5m", "memory": "64Mi"}}],
    }
    try:
        created = await store.create(agent_manifest())
        await store.list(Agent)
        await store.list(Agent, "default")
        created.spec.model = "gpt-4o"
        await store.replace(created)
        await runtime.observe("default/finn")  # GET /api/agents/{id}/health
        stats = await runtime.stats("default/finn")  # GET /api/agents/{id}/stats
        assert stats.memory_mb == 64.0
        [line async for line in runtime.logs("default/finn", tail=10)]  # GET /api/agents/{id}/logs
        await store.delete(Agent, "finn")
    finally:
        await store.close()
        await runtime.close()
    role = by_kind("ClusterRole")["clawpen-gateway"]
    used = recorded(kmock) - {("apps", "statefulsets", "create"), ("", "pods", "create")}  # seeding
    missing = sorted(u for u in used if not allowed(role, *u))
    assert missing == []
    assert {("", "pods/log", "get"), ("metrics.k8s.io", "pods", "get")} <= used


def test_kubectl_kustomize_builds_the_same_objects() -> None:
    """When kubectl is installed, its kustomize build (what `kubectl apply -k` sends) must succeed
    and contain exactly the objects checked above, with the image tag applied."""
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the kustomization is checked by parsing it instead")
    built = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120, check=False
    )
    assert built.returncode == 0, built.stderr
    docs = [d for d in yaml.safe_load_all(built.stdout) if d]
    ours = sorted((d["kind"], d["metadata"]["name"]) for _, d in OBJECTS)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == ours
    images = {
        c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"clawpen/controller:0.1.0"}
