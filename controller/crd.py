"""CustomResourceDefinitions for Agent and Team, generated from the pydantic models.

The pydantic models in controller.resources are the single source of the schema; this module
converts their JSON schema (draft 2020-12) into a Kubernetes *structural* OpenAPI v3 schema so
that `kubectl apply` rejects what `clawpen apply` rejects, as far as OpenAPI can say it:
- $refs are inlined (CRDs have no $defs);
- `anyOf: [X, null]` (Optional) becomes X with `nullable: true`;
- keywords OpenAPI v3 / structural schemas do not allow are dropped (title, default, $defs,
  additionalProperties: false — pruning plus kubectl's strict field validation take its place);
- numeric `exclusiveMinimum: N` (2020-12) becomes `minimum: N, exclusiveMinimum: true` (OpenAPI 3.0);
- `const` becomes a one-value enum;
- a model that also accepts a plain string (SecretRef: `secrets: [OPENAI_API_KEY]`) cannot be typed
  structurally, so its node preserves unknown fields and pydantic validates it in the controller.
Defaults are left to pydantic (dropped here) so a stored object looks like what the user wrote.

`python -m controller.crd [DIR]` writes crds/agents.clawpen.dev.yaml and crds/teams.clawpen.dev.yaml;
tests/controller/kube/test_crd.py checks the checked-in files equal a fresh generation.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from controller.resources import API_GROUP, DNS1123_LABEL, Agent, Resource, Team

VERSION = "v1alpha1"
CATEGORY = "clawpen"
CRDS_DIR = Path(__file__).resolve().parent.parent / "crds"

# Short names are cluster-wide: "ag"/"agent" are too likely to collide with other operators' CRDs
# (kagent has agents.kagent.dev), so ours carry the project prefix.
SHORT_NAMES: dict[str, list[str]] = {"Agent": ["cpa", "cpagent"], "Team": ["cpt", "cpteam"]}

# Models whose before-validator also accepts a bare string; structural schemas cannot express
# "string or object", so these nodes are left open (pydantic still validates them).
STRING_OR_OBJECT = {"SecretRef", "Approval"}

_DROP = {"title", "default", "$defs", "examples", "discriminator"}

PRINTER_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "Agent": [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
        {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    "Team": [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Router", "type": "string", "jsonPath": ".spec.router.mode"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
}


class SchemaConversionError(ValueError):
    """The pydantic schema uses a construct this converter cannot express structurally."""


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Inline a $ref (keeping sibling keywords such as description); return the ref's name too."""
    if "$ref" not in node:
        return node, None
    name = node["$ref"].rsplit("/", 1)[-1]
    if name not in defs:
        raise SchemaConversionError(f"unresolvable $ref {node['$ref']}")
    merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return merged, name


def convert(node: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Convert one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    node, ref_name = _resolve(node, defs)
    if ref_name in STRING_OR_OBJECT:
        out: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
        if node.get("description"):
            out["description"] = node["description"]
        return out

    variants = node.get("anyOf")
    if variants is not None:
        non_null = [v for v in variants if v.get("type") != "null"]
        if len(non_null) != 1:
            raise SchemaConversionError(
                f"{path or '<root>'}: unions other than Optional[X] are not structural"
            )
        inner = convert(non_null[0], defs, path)
        if len(non_null) < len(variants):
            inner["nullable"] = True
        if node.get("description") and "description" not in inner:
            inner["description"] = node["description"]
        return inner

    out = {}
    for key, value in node.items():
        if key in _DROP or key == "anyOf":
            continue
        if key == "properties":
            out["properties"] = {name: convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out["items"] = convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if isinstance(value, dict):  # a map: structural schemas allow a typed value schema
                out["additionalProperties"] = convert(value, defs, f"{path}.*")
            # `false` is not allowed next to properties; pruning does that job.
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "type" not in out and "enum" in out:
        out["type"] = "string" if all(isinstance(v, str) for v in out["enum"]) else "object"
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise SchemaConversionError(f"{path or '<root>'}: node has no type")
    return _ordered(out)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """type and description first, so the generated YAML reads like a hand-written CRD."""
    head: dict[str, Any] = {k: node[k] for k in ("type", "description") if k in node}
    return {**head, **{k: v for k, v in node.items() if k not in head}}


def openapi_schema(cls: type[Resource]) -> dict[str, Any]:
    """The CRD's openAPIV3Schema for one resource kind."""
    source = cls.model_json_schema(by_alias=True, mode="validation")
    defs = source.get("$defs", {})
    props = source["properties"]
    spec = convert(props["spec"], defs, "spec")
    status = convert(props["status"], defs, "status")
    status.pop("nullable", None)  # the subresource is an object or absent, never null
    return {
        "type": "object",
        "description": source.get("description") or f"A Claw Pen {cls.KIND}.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            # The only restriction a structural schema may place on metadata: the name.
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 63, "pattern": DNS1123_LABEL.pattern}},
            },
            "spec": spec,
            "status": status,
        },
    }


def crd(cls: type[Resource]) -> dict[str, Any]:
    """The full CustomResourceDefinition object for one kind."""
    singular = cls.KIND.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{cls.PLURAL}.{API_GROUP}", "labels": {"app.kubernetes.io/part-of": "clawpen"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": cls.KIND,
                "listKind": f"{cls.KIND}List",
                "plural": cls.PLURAL,
                "singular": singular,
                "shortNames": SHORT_NAMES[cls.KIND],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS[cls.KIND],
                    "schema": {"openAPIV3Schema": openapi_schema(cls)},
                }
            ],
        },
    }


HEADER = "# Generated by `python -m controller.crd` from controller/resources.py. Do not edit by hand.\n"


def render(cls: type[Resource]) -> str:
    return HEADER + yaml.safe_dump(crd(cls), sort_keys=False, width=110)


def filenames() -> dict[str, type[Resource]]:
    return {f"{cls.PLURAL}.{API_GROUP}.yaml": cls for cls in (Agent, Team)}


def write(directory: Path = CRDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, cls in filenames().items():
        path = directory / filename
        path.write_text(render(cls))
        written.append(path)
    return written


# kustomize reads only files under its own directory: deploy/kubernetes/crds carries a copy.
DEPLOY_CRDS_DIR = CRDS_DIR.parent / "deploy" / "kubernetes" / "crds"

if __name__ == "__main__":
    targets = [Path(sys.argv[1])] if len(sys.argv) > 1 else [CRDS_DIR, DEPLOY_CRDS_DIR]
    for target in targets:
        for written_path in write(target):
            print(written_path)
