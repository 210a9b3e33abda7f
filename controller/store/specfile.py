"""Spec files: the user-owned half of the file store, read strictly and written minimally.

A spec file is what a person writes and keeps in git: apiVersion, kind, metadata (name, labels,
annotations) and spec. Reading one either yields a validated resource or a BrokenSpec whose message
names the field and the rule, so `clawpen get` and the object's status can say exactly what is wrong
with which file. Writing one keeps only what differs from the defaults; comparing two versions uses
a hash of the normalized spec, so reformatting a file or adding comments is not a change.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from controller.resources import API_VERSION, Resource, format_validation_error
from controller.store.base import R
from controller.store.fileio import digest

NAMESPACE = "default"
SPEC_SUFFIX = ".yaml"
# Fields the store owns; in a spec file they are ignored, never trusted.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "finalizers",
)
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class BrokenSpec(Exception):
    """A spec file that cannot become a resource; the message says why (without the path)."""


def parse_spec(cls: type[R], path: Path, raw: bytes) -> R:
    """Validate the bytes of `<plural>/<name>.yaml` into `cls`, or raise BrokenSpec."""
    return validate_spec(cls, spec_document(cls, path, raw))


def spec_document(cls: type[Resource], path: Path, raw: bytes) -> dict[str, Any]:
    """The part of parse_spec that is worth caching: YAML and the file-level rules (kind, name...).

    Returns the mapping validate_spec turns into a resource, or raises BrokenSpec."""
    try:
        doc = yaml.load(raw, Loader=Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise BrokenSpec(f"invalid YAML: {problem}{where}") from None
    if doc is None:
        raise BrokenSpec("the file is empty")
    if not isinstance(doc, dict):
        raise BrokenSpec(
            f"must be a mapping with apiVersion, kind, metadata and spec (got a {type(doc).__name__})"
        )
    if doc.get("kind") != cls.KIND:
        raise BrokenSpec(f"kind: must be {cls.KIND} in {cls.PLURAL}/ (got {doc.get('kind')!r})")
    if doc.get("apiVersion") != API_VERSION:
        raise BrokenSpec(f"apiVersion: must be {API_VERSION} (got {doc.get('apiVersion')!r})")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise BrokenSpec("metadata: must be a mapping with at least a name")
    meta = {k: v for k, v in meta.items() if k not in SERVER_METADATA}
    namespace = meta.pop("namespace", None)
    if namespace not in (None, NAMESPACE):
        raise BrokenSpec(f"metadata.namespace: the file store has only {NAMESPACE!r} (got {namespace!r})")
    expected = path.name.removesuffix(SPEC_SUFFIX)
    if meta.get("name") != expected:
        raise BrokenSpec(f"metadata.name: must equal the file name {expected!r} (got {meta.get('name')!r})")
    body = {k: v for k, v in doc.items() if k != "status"}
    return {**body, "metadata": meta}


def validate_spec(cls: type[R], document: dict[str, Any]) -> R:
    """A new resource from a spec_document (never mutated, so one document can be validated often)."""
    try:
        return cls.model_validate(document)
    except ValidationError as err:
        raise BrokenSpec(format_validation_error(err)) from None


# A spec file as cached: the document validate_spec turns into a resource, or why it is broken.
SpecReading = dict[str, Any] | str


def read_spec_file(cls: type[Resource], path: Path, raw: bytes) -> SpecReading:
    """Parse and validate once per file version; the cache keeps the document, and every read
    validates it again into a new resource (~5 µs) so callers may mutate what they get."""
    try:
        document = spec_document(cls, path, raw)
        validate_spec(cls, document)
    except BrokenSpec as err:
        return f"{path}: {err}"
    return document


def render_spec(obj: Resource, previous: bytes | None = None) -> bytes:
    """The user-owned file: only what a person would write. Given the file's current bytes, only
    the fields that changed are touched, so its comments, key order and formatting survive."""
    meta: dict[str, Any] = {"name": obj.metadata.name}
    if obj.metadata.labels:
        meta["labels"] = dict(obj.metadata.labels)
    if obj.metadata.annotations:
        meta["annotations"] = dict(obj.metadata.annotations)
    spec = _spec(obj).model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")
    doc = {"apiVersion": API_VERSION, "kind": obj.KIND, "metadata": meta, "spec": spec}
    if previous is not None:
        from controller.store.roundtrip import update_yaml

        full = dict(doc, spec=_spec(obj).model_dump(by_alias=True, exclude_none=True, mode="json"))

        def same(written: Any) -> bool:
            again = type(obj).model_validate({k: v for k, v in written.items() if k != "status"})
            return same_content(again, obj)

        kept = update_yaml(previous, doc, full, same)
        if kept is not None:
            return kept
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True).encode()


def spec_hash(obj: Resource) -> str:
    """Hash of the normalized spec: reformatting or comments do not count as a change."""
    return digest(
        json.dumps(
            _spec(obj).model_dump(by_alias=True, exclude_none=True, mode="json"),
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    )


def same_content(a: Resource, b: Resource) -> bool:
    """Equal as far as the spec file goes: spec, labels and annotations."""
    return (
        spec_hash(a) == spec_hash(b)
        and a.metadata.labels == b.metadata.labels
        and a.metadata.annotations == b.metadata.annotations
    )


def _spec(obj: Resource) -> BaseModel:
    spec = getattr(obj, "spec", None)
    if not isinstance(spec, BaseModel):
        raise TypeError(f"{type(obj).__name__} has no spec")
    return spec


def status_type(cls: type[Resource]) -> type[BaseModel]:
    annotation = cls.model_fields["status"].annotation
    return next(a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel))
