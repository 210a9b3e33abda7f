"""Golden-file tests of controller.kube.objects: plan in (golden/*.input.yaml), objects out (golden/*.yaml).

Regenerate after an intended change with CLAWPEN_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.kube import objects
from controller.plan import LABEL_PLAN_HASH, Mount, PlanFile, SecretMount, WorkloadPlan

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in GOLDEN.glob("*.input.yaml"))


def load_case(case: str) -> tuple[WorkloadPlan, dict[str, bytes], objects.Owner | None]:
    data = yaml.safe_load((GOLDEN / f"{case}.input.yaml").read_text())
    raw = dict(data["plan"])
    raw["mounts"] = tuple(Mount(**m) for m in raw.get("mounts", []))
    raw["secrets"] = tuple(SecretMount(**s) for s in raw.get("secrets", []))
    raw["files"] = tuple(PlanFile(**f) for f in raw.get("files", []))
    plan = WorkloadPlan(**raw)
    values = {k: v.encode() for k, v in (data.get("secret_values") or {}).items()}
    owner = objects.Owner(**data["owner"]) if data.get("owner") else None
    return plan, values, owner


def render(case: str) -> str:
    plan, values, owner = load_case(case)
    return yaml.safe_dump_all(objects.build(plan, values, owner).all(), sort_keys=False, width=110)


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 3


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    got = render(case)
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("CLAWPEN_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert golden.exists(), f"missing {golden}; run with CLAWPEN_UPDATE_GOLDEN=1"
    assert got == golden.read_text(), f"{case}: objects differ from {golden.name}"


def _by_kind(case: str) -> dict[str, dict[str, Any]]:
    plan, values, owner = load_case(case)
    return {o["kind"]: o for o in objects.build(plan, values, owner).all()}


def test_running_plan_has_one_replica_and_stopped_has_none() -> None:
    assert _by_kind("running-with-owner")["StatefulSet"]["spec"]["replicas"] == 1
    assert _by_kind("stopped-with-secrets-and-volume")["StatefulSet"]["spec"]["replicas"] == 0


def test_every_object_is_labelled_with_the_plan_hash_and_owned_by_the_agent() -> None:
    plan, values, owner = load_case("running-with-owner")
    for obj in objects.build(plan, values, owner).all():
        meta = obj["metadata"]
        assert meta["labels"][LABEL_PLAN_HASH] == plan.hash
        assert meta["labels"]["team"] == "finance"
        ref = meta["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("Agent", "finn", owner.uid, True)


def test_hardening_matches_the_docker_runtime() -> None:
    sts = _by_kind("running-with-owner")["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    sc = pod["containers"][0]["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 10001 and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "1024Mi", "cpu": "1000m"}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert {"/data", "/workspace", "/tmp", "/run/secrets"} <= set(mounts)
    assert mounts["/run/secrets"]["readOnly"] is True
    assert [c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]] == ["data", "workspace"]


def test_secret_values_are_in_the_secret_and_as_env_only_by_reference() -> None:
    objs = _by_kind("stopped-with-secrets-and-volume")
    data = objs["Secret"]["data"]
    assert base64.b64decode(data["OPENAI_API_KEY"]) == b"sk-test-not-real"
    container = objs["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["GITHUB_TOKEN"] == {
        "name": "GITHUB_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "agent-7-lab-secrets", "key": "GITHUB_TOKEN"}},
    }
    assert "OPENAI_API_KEY" not in env
    assert "not-real" not in yaml.safe_dump(objs["StatefulSet"])


def test_extra_named_volume_is_a_claim_and_reserved_targets_are_skipped() -> None:
    pod = _by_kind("stopped-with-secrets-and-volume")["StatefulSet"]["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["shared-corpus"]
    mounts = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    assert mounts.count("/data") == 1 and "/corpus" in mounts


def test_long_names_are_shortened_stably_within_limits() -> None:
    objs = _by_kind("long-name")
    name = objs["StatefulSet"]["metadata"]["name"]
    assert len(name) <= objects.MAX_WORKLOAD_NAME and name.startswith("agent-a-very-long")
    assert objs["Service"]["metadata"]["name"] == name
    assert objects.workload_name("x" * 63) == objects.workload_name("x" * 63)
    assert objects.workload_name("x" * 63) != objects.workload_name("x" * 62 + "y")


def test_network_policy_admits_only_gateway_and_operator() -> None:
    policy = _by_kind("running-with-owner")["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    components = peer["podSelector"]["matchExpressions"][1]["values"]
    assert components == ["gateway", "operator"]


def test_host_path_is_refused_with_a_clear_message() -> None:
    plan, values, owner = load_case("running-with-owner")
    bad = WorkloadPlan(**{**plan.__dict__, "mounts": (Mount("/srv/data", "/srv"),)})
    with pytest.raises(objects.UnsupportedPlan, match="host paths are not available"):
        objects.build(bad, values, owner)


def test_missing_secret_value_is_refused() -> None:
    plan, _, owner = load_case("stopped-with-secrets-and-volume")
    with pytest.raises(objects.UnsupportedPlan, match="OPENAI_API_KEY"):
        objects.build(plan, {"GITHUB_TOKEN": b"x"}, owner)


@pytest.mark.parametrize("case", CASES)
def test_objects_validate_strictly_against_the_kubernetes_schemas(case: str) -> None:
    import kubernetes_validate

    plan, values, owner = load_case(case)
    for obj in objects.build(plan, values, owner).all():
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_openclaw_statefulset_mounts_the_config_translate_rendered() -> None:
    """The Kubernetes path runs the same image and the same rendered config as Docker, from the Secret."""
    from controller.resources import parse_resource
    from controller.translate import translate
    from tests.controller.test_translate import CATALOG, ENVIRON, SECRETS, TOKEN
    from tests.controller.test_translate import GOLDEN as TRANSLATE_GOLDEN

    plan, _, _ = load_case("openclaw")
    manifest = yaml.safe_load((TRANSLATE_GOLDEN / "openclaw-openai.yaml").read_text())
    docker_plan = translate(
        parse_resource(manifest), CATALOG, SECRETS, instance="default", image="x", environ=ENVIRON, agent_token=TOKEN
    )
    assert plan.files == docker_plan.files and plan.hash == docker_plan.hash  # the input is not stale
    kinds = _by_kind("openclaw")
    data = kinds["Secret"]["data"]
    assert base64.b64decode(data["openclaw.json"]).decode() == plan.files[0].content
    assert set(data) == {"OPENAI_API_KEY", "clawpen-agent-token", "openclaw.json"}
    container = kinds["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == plan.image == "clawpen/openclaw:2026.9.6"
    assert container["ports"][0]["containerPort"] == 18789
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 180
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OPENCLAW_CONFIG_PATH"] == "/run/secrets/openclaw.json" and "OPENCLAW_GATEWAY_TOKEN" not in env
    assert kinds["Service"]["spec"]["ports"][0]["port"] == 8080  # status.endpoint stays :8080
