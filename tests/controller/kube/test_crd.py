"""The CRDs in crds/: generated from the pydantic models, structural, and agreeing with them.

Agreement is checked on real manifests (the examples shipped in deploy/kubernetes/examples plus
hand-written bad ones): each is validated by pydantic and by the CRD's openAPIV3Schema (converted to
draft-4 JSON schema, the dialect OpenAPI 3.0 extends), and both must give the same verdict.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from controller import crd
from controller.resources import Agent, ManifestError, Team, parse_resource

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "deploy" / "kubernetes" / "examples"


@pytest.mark.parametrize("directory", [ROOT / "crds", ROOT / "deploy" / "kubernetes" / "crds"])
def test_checked_in_crds_equal_a_fresh_generation(directory: Path) -> None:
    for filename, cls in crd.filenames().items():
        path = directory / filename
        assert path.exists(), f"{path} missing: run `python -m controller.crd`"
        assert path.read_text() == crd.render(cls), f"{path} is stale: run `python -m controller.crd`"


def test_kubectl_apply_f_crds_sees_only_crds() -> None:
    """`kubectl apply -f crds/` sends every YAML file there: each must be a CRD (a kustomization is not)."""
    files = sorted((ROOT / "crds").iterdir())
    assert files, "crds/ is empty"
    for path in files:
        assert path.suffix in (".yaml", ".yml", ".json"), path
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] == "CustomResourceDefinition", f"{path.name} is a {doc.get('kind')}, not a CRD"


@pytest.mark.parametrize("cls", [Agent, Team])
def test_crd_shape(cls: type[Agent] | type[Team]) -> None:
    doc = yaml.safe_load(crd.render(cls))
    spec = doc["spec"]
    assert doc["metadata"]["name"] == f"{cls.PLURAL}.clawpen.dev"
    assert spec["scope"] == "Namespaced" and spec["group"] == "clawpen.dev"
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Phase" and columns[-1] == "Age" and "Ready" in columns
    if cls is Agent:
        assert columns == ["Phase", "Provider", "Model", "Ready", "Age"]
    assert spec["names"]["shortNames"] and spec["names"]["categories"] == ["clawpen"]


FORBIDDEN_IN_STRUCTURAL = {"$ref", "$defs", "definitions", "title", "const", "oneOf", "anyOf", "allOf", "not"}


def _check_structural(node: dict[str, Any], path: str, errors: list[str]) -> None:
    for key in FORBIDDEN_IN_STRUCTURAL & node.keys():
        errors.append(f"{path}: keyword {key} is not allowed here")
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        errors.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        errors.append(f"{path}: properties and additionalProperties together")
    if node.get("additionalProperties") is False:
        errors.append(f"{path}: additionalProperties: false")
    if "default" in node and node["default"] is None:
        errors.append(f"{path}: null default")
    for name, sub in (node.get("properties") or {}).items():
        _check_structural(sub, f"{path}.{name}", errors)
    if isinstance(node.get("additionalProperties"), dict):
        _check_structural(node["additionalProperties"], f"{path}.*", errors)
    if "items" in node:
        _check_structural(node["items"], f"{path}[]", errors)


@pytest.mark.parametrize("cls", [Agent, Team])
def test_schema_is_structural(cls: type[Agent] | type[Team]) -> None:
    schema = crd.openapi_schema(cls)
    errors: list[str] = []
    _check_structural(schema, "", errors)
    assert errors == []
    assert set(schema["properties"]["metadata"]["properties"]) == {"name"}  # the only allowed restriction


def test_unsupported_union_is_refused_by_the_converter() -> None:
    node = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    with pytest.raises(crd.SchemaConversionError, match="not structural"):
        crd.convert(node, {}, "spec.x")


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 (as Kubernetes uses it) → draft-4 JSON schema: nullable becomes a null type."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"
    }
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def crd_validator(cls: type[Agent] | type[Team]) -> Any:
    return jsonschema_rs.Draft4Validator(to_json_schema(crd.openapi_schema(cls)))


def example_manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_there_are_examples_of_both_kinds() -> None:
    kinds = {d["kind"] for d in example_manifests()}
    assert kinds == {"Agent", "Team"}


@pytest.mark.parametrize("doc", example_manifests(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_examples_validate_against_pydantic_and_the_crd(doc: dict[str, Any]) -> None:
    obj = parse_resource(doc)
    validator = crd_validator(type(obj))  # type: ignore[arg-type]
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == []
    # What the server stores and returns must still be valid for pydantic: the model's own dump.
    assert validator.is_valid(obj.dump())


BASE_AGENT = {
    "apiVersion": "clawpen.dev/v1alpha1",
    "kind": "Agent",
    "metadata": {"name": "finn"},
    "spec": {"provider": "openai", "model": "gpt-4o", "resources": {"memoryMB": 1024, "cpu": 1.0}},
}

# (description, path to set, value): each is wrong for both validators.
BAD_AGENTS = [
    ("state not in enum", ("spec", "state"), "Paused"),
    ("memory below minimum", ("spec", "resources", "memoryMB"), 0),
    ("cpu exclusive minimum", ("spec", "resources", "cpu"), 0),
    ("memory not an integer", ("spec", "resources", "memoryMB"), "1Gi"),
    ("preset not in enum", ("spec", "resources", "preset"), "huge"),
    ("env value not a string", ("spec", "env"), {"A": 1}),
    ("restartPolicy not in enum", ("spec", "restartPolicy"), "sometimes"),
    ("model too long", ("spec", "model"), "m" * 257),
    ("name not a DNS label", ("metadata", "name"), "Finn_The_Agent"),
    ("too many tags", ("spec", "tags"), ["t"] * 65),
    ("volume without target", ("spec", "volumes"), [{"source": "corpus"}]),
]


def _with(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def test_base_agent_is_valid_for_both() -> None:
    parse_resource(BASE_AGENT)
    assert crd_validator(Agent).is_valid(BASE_AGENT)


@pytest.mark.parametrize("why,path,value", BAD_AGENTS, ids=[b[0] for b in BAD_AGENTS])
def test_bad_agents_are_refused_by_both(why: str, path: tuple[str, ...], value: Any) -> None:
    doc = _with(BASE_AGENT, path, value)
    with pytest.raises(ManifestError):
        parse_resource(doc)
    assert not crd_validator(Agent).is_valid(doc), f"the CRD schema accepts: {why}"


def test_secrets_accept_the_string_shorthand_in_the_crd() -> None:
    doc = _with(BASE_AGENT, ("spec", "secrets"), ["OPENAI_API_KEY", {"name": "GH", "asEnv": True}])
    parse_resource(doc)
    assert crd_validator(Agent).is_valid(doc)


def test_team_routing_maps_are_typed() -> None:
    team = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Team",
        "metadata": {"name": "finance"},
        "spec": {"agents": {"billing": {"agent": "finn"}}, "routing": {"billing": {"keywords": "invoice"}}},
    }
    assert not crd_validator(Team).is_valid(team)
    with pytest.raises(ManifestError):
        parse_resource(team)
