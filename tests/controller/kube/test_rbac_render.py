"""`clawpen operator rbac`: the per-namespace RoleBindings a cluster admin applies for every namespace
that holds Agents (they were hand-written before; the docs said "add one like this").

- golden file: the exact YAML the real CLI prints for two namespaces (regenerate with
  CLAWPEN_UPDATE_GOLDEN=1 and review the diff);
- every object validates strictly against the Kubernetes OpenAPI schema and binds a ClusterRole and
  ServiceAccounts that deploy/kubernetes really installs;
- with those bindings the operator and gateway get Secrets in exactly the named namespaces (never
  kube-system), judged with the same rule matcher that test_deploy uses on the installed RBAC;
- the bindings rbac.yaml ships for `default` are exactly this rendering, so the two cannot drift.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from controller.kube.rbac import namespace_role_bindings, render_namespace_rbac
from tests.controller.kube.test_deploy import K8S_VERSION, OBJECTS, ROOT, SYSTEM_NS, allowed, by_kind

GOLDEN = Path(__file__).parent / "golden" / "rbac"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "CLAWPEN_SYSTEM_NAMESPACE"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "operator", "rbac", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("case", "args", "env"),
    [
        ("team-a-team-b", ["-n", "team-a", "--namespace", "team-b", "-n", "team-a"], None),
        ("custom-system-namespace", ["-n", "research", "--system-namespace", "ops-clawpen"], None),
        ("system-namespace-from-env", ["-n", "research"], {"CLAWPEN_SYSTEM_NAMESPACE": "ops-clawpen"}),
    ],
)
def test_golden(case: str, args: list[str], env: dict[str, str] | None) -> None:
    answer = cli(*args, env=env)
    assert answer.returncode == 0, answer.stderr
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("CLAWPEN_UPDATE_GOLDEN"):
        golden.write_text(answer.stdout)
    assert golden.exists(), f"missing {golden}; run with CLAWPEN_UPDATE_GOLDEN=1"
    assert answer.stdout == golden.read_text(), f"{case}: output differs from {golden.name}"


def test_rendered_objects_are_valid_and_bind_what_the_install_defines() -> None:
    docs = list(yaml.safe_load_all(render_namespace_rbac(["team-a", "team-b"])))
    assert [(d["kind"], d["metadata"]["namespace"]) for d in docs] == [
        ("RoleBinding", "team-a"),
        ("RoleBinding", "team-a"),
        ("RoleBinding", "team-b"),
        ("RoleBinding", "team-b"),
    ]
    accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in by_kind("ServiceAccount").values()}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["roleRef"]["kind"] == "ClusterRole" and doc["roleRef"]["name"] in by_kind("ClusterRole")
        assert {(s["namespace"], s["name"]) for s in doc["subjects"]} <= accounts


def _rules(docs: list[dict[str, Any]], account: str, namespace: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for doc in docs:
        if doc["metadata"]["namespace"] == namespace and any(s["name"] == account for s in doc["subjects"]):
            rules += by_kind("ClusterRole")[doc["roleRef"]["name"]]["rules"]
    return {"rules": rules}


def test_secrets_are_reachable_in_exactly_the_named_namespaces() -> None:
    docs = list(yaml.safe_load_all(render_namespace_rbac(["team-a", "team-b"])))
    for namespace in ("team-a", "team-b"):
        operator = _rules(docs, "clawpen-operator", namespace)
        assert all(allowed(operator, "", "secrets", verb) for verb in ("get", "create", "patch", "delete"))
        gateway = _rules(docs, "clawpen-gateway", namespace)
        assert allowed(gateway, "", "secrets", "get")
        assert not allowed(gateway, "", "secrets", "patch") and not allowed(gateway, "", "secrets", "list")
    for elsewhere in ("kube-system", "default", SYSTEM_NS):
        assert _rules(docs, "clawpen-operator", elsewhere) == {"rules": []}
        assert _rules(docs, "clawpen-gateway", elsewhere) == {"rules": []}


def test_the_installed_default_bindings_are_this_rendering() -> None:
    shipped = [
        doc for _, doc in OBJECTS if doc["kind"] == "RoleBinding" and doc["metadata"].get("namespace") == "default"
    ]
    assert shipped == namespace_role_bindings("default", SYSTEM_NS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "Team_A"], "namespace 'Team_A' is not a valid Kubernetes namespace name"),
        (["-n", "ok", "--system-namespace=Ops"], "system namespace 'Ops' is not a valid"),
        ([], "the following arguments are required: -n/--namespace"),
    ],
)
def test_bad_namespaces_are_refused_by_name(args: list[str], message: str) -> None:
    answer = cli(*args)
    assert answer.returncode != 0 and message in answer.stderr, answer.stderr
    assert answer.stdout == ""
