"""The per-namespace half of the operator's and gateway's RBAC, rendered for the namespaces a cluster
admin names (`clawpen operator rbac -n team-a -n team-b | kubectl apply -f -`).

Agent Secrets are the one thing neither the operator nor the gateway may touch cluster-wide: a
ClusterRoleBinding to `clawpen-agent-secrets` would let the operator read kube-system's Secrets. So
deploy/kubernetes/rbac.yaml defines the ClusterRoles and binds them only in `default`, and every
other namespace that holds Agents needs its own RoleBindings. The operator cannot create them itself
(granting RBAC needs `bind`/`escalate`, which would undo the point), so the admin renders them here,
reviews them, and applies or commits them (GitOps) — the same objects rbac.yaml holds for `default`,
which a test keeps identical to this rendering.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
# (RoleBinding and ClusterRole name, ServiceAccount, component): who gets Secret access where.
BINDINGS = (
    ("clawpen-agent-secrets", "clawpen-operator", "operator"),
    ("clawpen-gateway-agent-tokens", "clawpen-gateway", "gateway"),
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def namespace_role_bindings(namespace: str, system_namespace: str = "clawpen-system") -> list[dict[str, Any]]:
    """The RoleBindings that let the operator and gateway (in `system_namespace`) reach Agent
    Secrets in `namespace`, and nowhere else."""
    for what, value in (("namespace", namespace), ("system namespace", system_namespace)):
        if not _DNS1123_LABEL.match(value):
            raise ValueError(f"{what} {value!r} is not a valid Kubernetes namespace name (a DNS-1123 label)")
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {LABEL_NAME: "clawpen", LABEL_COMPONENT: component},
            },
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": system_namespace}],
        }
        for name, account, component in BINDINGS
    ]


def render_namespace_rbac(namespaces: Iterable[str], system_namespace: str = "clawpen-system") -> str:
    """Multi-document YAML for `kubectl apply -f -`, namespaces de-duplicated in the order given."""
    seen = list(dict.fromkeys(namespaces))
    if not seen:
        raise ValueError("name at least one namespace that holds Agents (-n NAMESPACE)")
    header = (
        "# Claw Pen: access to Agent Secrets in "
        + ", ".join(seen)
        + f" for the operator and gateway in {system_namespace}.\n"
        "# Rendered by `clawpen operator rbac`; the ClusterRoles come from deploy/kubernetes/rbac.yaml.\n"
    )
    docs = [doc for ns in seen for doc in namespace_role_bindings(ns, system_namespace)]
    return header + yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
