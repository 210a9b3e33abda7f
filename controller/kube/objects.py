"""WorkloadPlan → Kubernetes objects. Pure: no API calls, no clock, so it is golden-file tested.

One agent becomes four objects, all labelled with plan.owner_labels() and owned by the Agent
(ownerReferences, so deleting the Agent cascades through the garbage collector):
- a StatefulSet with one replica (zero when stopped: stopping keeps the volumes and the identity),
  volumeClaimTemplates for /data and /workspace, and the same hardening as the Docker runtime;
- a Secret with the agent's secret values, mounted read-only as files at /run/secrets (and
  referenced by env for the ones marked asEnv);
- a ClusterIP Service: the chat contract's stable DNS name, which becomes status.endpoint;
- a NetworkPolicy admitting traffic only from Claw Pen's own gateway and operator pods, so agents
  cannot reach each other.

Things Docker has and Kubernetes does not (pids limit per container, host-gateway extra hosts) are
the cluster's business (kubelet podPidsLimit, cluster DNS) and are left out on purpose.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.plan import (
    AGENT_PORT,
    AGENT_UID,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_NAMESPACE,
    WorkloadPlan,
)
from controller.resources import API_VERSION

CONTAINER = "agent"
PORT_NAME = "chat"
SECRETS_DIR = "/run/secrets"
CLAIMS = {"data": "/data", "workspace": "/workspace"}
MAX_WORKLOAD_NAME = 52  # a StatefulSet's pods carry "<name>-<10-char hash>" labels, which must fit in 63


class UnsupportedPlan(ValueError):
    """The plan asks for something a Kubernetes cluster cannot give safely (e.g. a host path)."""


@dataclass(frozen=True)
class KubeOptions:
    """Installation-wide choices that are not part of any one agent's spec."""

    cluster_domain: str = "cluster.local"
    # Pods allowed to reach agents: the gateway (chat relay) and the operator (health probe).
    allowed_namespace: str = "clawpen-system"
    allowed_components: tuple[str, ...] = ("gateway", "operator")
    data_size: str = "1Gi"
    workspace_size: str = "5Gi"
    storage_class: str | None = None
    image_pull_policy: str = "IfNotPresent"
    gvisor_runtime_class: str = "gvisor"  # RuntimeClass for spec.isolation: gvisor


@dataclass(frozen=True)
class Owner:
    """The Agent custom resource the objects belong to (for ownerReferences)."""

    name: str
    uid: str


@dataclass(frozen=True)
class AgentObjects:
    statefulset: dict[str, Any]
    service: dict[str, Any]
    secret: dict[str, Any]
    network_policy: dict[str, Any]
    extra: tuple[dict[str, Any], ...] = field(default=())

    def all(self) -> list[dict[str, Any]]:
        return [self.secret, self.service, self.network_policy, self.statefulset, *self.extra]


def workload_name(agent_name: str) -> str:
    """The name of every object for this agent: prefixed (Service names must start with a letter,
    agent names may not), shortened with a hash when the prefix would push it past the limit."""
    name = f"agent-{agent_name}"
    if len(name) <= MAX_WORKLOAD_NAME:
        return name
    digest = hashlib.sha256(agent_name.encode()).hexdigest()[:8]
    return f"{name[: MAX_WORKLOAD_NAME - 9].rstrip('-')}-{digest}"


def secret_name(agent_name: str) -> str:
    return f"{workload_name(agent_name)}-secrets"


def selector_labels(plan_instance: str, namespace: str, name: str) -> dict[str, str]:
    """The immutable subset of the owner labels: a StatefulSet's selector can never change."""
    return {
        LABEL_MANAGED: "clawpen",
        LABEL_INSTANCE: plan_instance,
        LABEL_NAMESPACE: namespace,
        LABEL_NAME: name,
    }


def endpoint(plan: WorkloadPlan, options: KubeOptions) -> str:
    return f"http://{workload_name(plan.name)}.{plan.namespace}.svc.{options.cluster_domain}:{plan.port}"


def _meta(plan: WorkloadPlan, name: str, owner: Owner | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": plan.namespace, "labels": plan.owner_labels()}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": "Agent",
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return meta


def _quantity_cpu(cpu: float) -> str:
    return f"{max(1, round(cpu * 1000))}m"


def build_secret(
    plan: WorkloadPlan, values: Mapping[str, bytes] | None, owner: Owner | None
) -> dict[str, Any]:
    values = values or {}
    missing = [m.name for m in plan.secrets if m.name not in values]
    if missing:
        raise UnsupportedPlan(f"no value given for secret(s) {', '.join(missing)}")
    data = {m.name: base64.b64encode(values[m.name]).decode() for m in plan.secrets}
    # The program's rendered config rides in the same Secret: it is mounted beside the secret files
    # it refers to, and Kubernetes rolls the pod when the plan hash (which covers it) changes.
    data.update({f.name: base64.b64encode(f.content.encode()).decode() for f in plan.files})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(plan, secret_name(plan.name), owner),
        "type": "Opaque",
        "data": dict(sorted(data.items())),
    }


def build_service(plan: WorkloadPlan, owner: Owner | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(plan, workload_name(plan.name), owner),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(plan.instance, plan.namespace, plan.name),
            "ports": [{"name": PORT_NAME, "port": AGENT_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def build_network_policy(plan: WorkloadPlan, owner: Owner | None, options: KubeOptions) -> dict[str, Any]:
    peers = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": options.allowed_namespace}},
            "podSelector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": ["clawpen"]},
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": list(options.allowed_components),
                    },
                ]
            },
        }
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(plan, workload_name(plan.name), owner),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(plan.instance, plan.namespace, plan.name)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": plan.port}]}],
        },
    }


def _volumes(plan: WorkloadPlan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, container mounts): claims, /tmp, secrets, then the plan's extra mounts."""
    mounts: list[dict[str, Any]] = [{"name": claim, "mountPath": path} for claim, path in CLAIMS.items()]
    volumes: list[dict[str, Any]] = []
    for index, path in enumerate(plan.tmpfs):
        volumes.append({"name": f"tmp-{index}", "emptyDir": {"sizeLimit": "256Mi"}})
        mounts.append({"name": f"tmp-{index}", "mountPath": path})
    volumes.append(
        {"name": "secrets", "secret": {"secretName": secret_name(plan.name), "defaultMode": 0o440}}
    )
    mounts.append({"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
    for index, mount in enumerate(plan.mounts):
        if mount.target in CLAIMS.values():
            continue  # the claim templates provide these
        if mount.source.startswith("/"):
            raise UnsupportedPlan(
                f"volume {mount.source}:{mount.target}: host paths are not available on Kubernetes "
                "(use a named volume: a PersistentVolumeClaim of that name)"
            )
        volumes.append({"name": f"vol-{index}", "persistentVolumeClaim": {"claimName": mount.source}})
        entry: dict[str, Any] = {"name": f"vol-{index}", "mountPath": mount.target}
        if mount.read_only:
            entry["readOnly"] = True
        mounts.append(entry)
    return volumes, mounts


def _env(plan: WorkloadPlan) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(plan.env.items())]
    for secret in plan.secrets:
        if secret.as_env:
            ref = {"name": secret_name(plan.name), "key": secret.name}
            env.append({"name": secret.name, "valueFrom": {"secretKeyRef": ref}})
    return env


def _claim(name: str, size: str, plan: WorkloadPlan, options: KubeOptions) -> dict[str, Any]:
    # Claim templates are immutable: only the stable selector labels, never the plan hash.
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if options.storage_class:
        spec["storageClassName"] = options.storage_class
    return {
        "metadata": {"name": name, "labels": selector_labels(plan.instance, plan.namespace, plan.name)},
        "spec": spec,
    }


def build_statefulset(plan: WorkloadPlan, owner: Owner | None, options: KubeOptions) -> dict[str, Any]:
    volumes, mounts = _volumes(plan)
    uid = int(plan.user.split(":")[0]) if plan.user else AGENT_UID
    memory = f"{plan.memory_mb}Mi"
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": plan.image,
        "imagePullPolicy": options.image_pull_policy,
        "env": _env(plan),
        "ports": [{"name": PORT_NAME, "containerPort": plan.port, "protocol": "TCP"}],
        # Memory is not overcommitted (an OOM kill means what it means under Docker); CPU is
        # compressible and agents mostly wait on model APIs, so they request a tenth of the limit.
        "resources": {
            "limits": {"memory": memory, "cpu": _quantity_cpu(plan.cpu)},
            "requests": {"memory": memory, "cpu": _quantity_cpu(max(plan.cpu / 10, 0.05))},
        },
        "readinessProbe": {
            "httpGet": {"path": plan.readiness_path, "port": PORT_NAME},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "readOnlyRootFilesystem": plan.read_only_rootfs,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    if plan.start_timeout_s > 60:
        # A slow starter (OpenClaw: tens of seconds) gets a startup probe, so neither readiness
        # nor a liveness policy counts its boot against it.
        container["startupProbe"] = {
            "httpGet": {"path": plan.readiness_path, "port": PORT_NAME},
            "periodSeconds": 5,
            "failureThreshold": max(1, plan.start_timeout_s // 5),
        }
    labels = plan.owner_labels()
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # agents never talk to the API server
        "enableServiceLinks": False,  # no other services' addresses in the agent's env
        "terminationGracePeriodSeconds": 15,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "fsGroup": uid,  # so the claims are writable by the non-root user
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if plan.isolation == "gvisor":
        pod_spec["runtimeClassName"] = options.gvisor_runtime_class  # the cluster's RuntimeClass for runsc
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(plan, workload_name(plan.name), owner),
        "spec": {
            "replicas": 1 if plan.running else 0,
            "serviceName": workload_name(plan.name),
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector_labels(plan.instance, plan.namespace, plan.name)},
            # Volumes outlive the StatefulSet; runtime.remove(volumes=True) deletes them explicitly.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels},
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [
                _claim("data", options.data_size, plan, options),
                _claim("workspace", options.workspace_size, plan, options),
            ],
        },
    }


def build(
    plan: WorkloadPlan,
    secret_values: Mapping[str, bytes] | None = None,
    owner: Owner | None = None,
    options: KubeOptions | None = None,
) -> AgentObjects:
    """Every object one agent needs, in an order safe to create them in (Secret first)."""
    opts = options or KubeOptions()
    return AgentObjects(
        statefulset=build_statefulset(plan, owner, opts),
        service=build_service(plan, owner),
        secret=build_secret(plan, secret_values, owner),
        network_policy=build_network_policy(plan, owner, opts),
    )
