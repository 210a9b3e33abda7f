"""The controller-owned half of the file store: server metadata and status, one file per object.

`<home>/.state/<plural>/<name>.yaml` holds what Kubernetes' API server would keep: uid,
creationTimestamp, generation, resourceVersion, the status, and two hashes of the spec file as last
seen — `fileHash` (the raw bytes: any edit, even of labels or formatting, gives a new
resourceVersion) and `specHash` (the normalized spec: only a real spec change bumps generation; None
when the file was last seen broken, so that fixing it always counts as a change).

resourceVersion comes from one store-wide sequence (`<home>/.state/resource-version`), so a
deleted-and-recreated object never repeats an old version and a stale client always gets 409.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from controller.resources import ObjectMeta, Resource, format_validation_error, now
from controller.store.base import R
from controller.store.filecache import ParsedFiles
from controller.store.fileio import atomic_write, digest, exclusive_lock, read_bytes, remove_durably
from controller.store.specfile import NAMESPACE, Dumper, Loader, spec_hash, status_type, validate_spec

log = logging.getLogger(__name__)

State = dict[str, Any]


def fresh_state(resource: Resource | None, raw: bytes, resource_version: str) -> State:
    """The record of an object seen for the first time (created, or a hand-written file adopted)."""
    return {
        "uid": str(uuid.uuid4()),
        "creationTimestamp": now().isoformat(),
        "generation": 1,
        "resourceVersion": resource_version,
        "specHash": spec_hash(resource) if resource is not None else None,
        "fileHash": digest(raw),
        "status": None,
    }


@dataclass(frozen=True)
class SpecDocument:
    """A spec file's validated document (shared, from the cache), not yet turned into a resource."""

    kind: type[Resource]
    data: dict[str, Any]


@dataclass(frozen=True)
class Observed:
    """One reading of an object's two files: the spec file (parsed, or why not) and its state.

    `spec` is a resource, or a SpecDocument that becomes one only when needed: materialize builds
    the API object from the document in one validation, the hot path of get() and list()."""

    raw: bytes | None
    spec: Resource | SpecDocument | None
    error: str | None
    state: State | None

    @functools.cached_property
    def resource(self) -> Resource | None:
        if isinstance(self.spec, SpecDocument):
            return validate_spec(self.spec.kind, self.spec.data)
        return self.spec

    def synced_state(self, next_rv: Callable[[], str]) -> State | None:
        """The state once the spec file as read is accounted for, or None when already in step.

        This is how a hand edit or `git pull` becomes what an API write would have been."""
        assert self.raw is not None
        if self.state is None:
            return fresh_state(self.resource, self.raw, next_rv())
        file_hash = digest(self.raw)
        if self.state.get("fileHash") == file_hash:
            return None
        current_spec = spec_hash(self.resource) if self.resource is not None else None
        new = dict(self.state, fileHash=file_hash, specHash=current_spec, resourceVersion=next_rv())
        if current_spec is not None and current_spec != self.state.get("specHash"):
            new["generation"] = int(self.state.get("generation") or 0) + 1
        return new

    def with_state(self, state: State) -> Observed:
        return Observed(self.raw, self.spec, self.error, state)


def parse_state(path: Path, raw: bytes) -> State | None:
    try:
        state = yaml.load(raw, Loader=Loader)
    except yaml.YAMLError:
        state = None
    if not isinstance(state, dict) or not state.get("uid"):
        # Only the store writes this file, atomically; if it is unreadable anyway, adopt anew.
        log.warning("state file %s is unreadable; the object is adopted again", path)
        return None
    return state


class StateDir:
    """Reads and writes the state records; every write happens under `lock()`.

    Reads come from a cache of parsed records (see filecache); the records it returns are shared
    and must not be mutated — derive new ones with dict(state, ...)."""

    def __init__(self, root: Path):
        self.root = root
        self._lock_path = root / "lock"
        self._rv_path = root / "resource-version"
        self._root_str = str(root)
        self.cache: ParsedFiles[State | None] = ParsedFiles(parse_state)

    def directory(self, cls: type[Resource]) -> Path:
        return self.root / cls.PLURAL

    def path(self, cls: type[Resource], name: str) -> Path:
        return self.directory(cls) / f"{name}.yaml"

    def _key(self, cls: type[Resource], name: str) -> str:
        """path() as the cache's key: a string, because a Path join costs more than the stat."""
        return f"{self._root_str}/{cls.PLURAL}/{name}.yaml"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with exclusive_lock(self._lock_path):
            yield

    def read(self, cls: type[Resource], name: str) -> State | None:
        found = self.cache.read(self._key(cls, name))
        return None if found is None else found[1]

    def write(self, cls: type[Resource], name: str, state: State) -> None:
        atomic_write(self.path(cls, name), yaml.dump(state, Dumper=Dumper, sort_keys=False).encode())

    def remove(self, cls: type[Resource], name: str) -> bool:
        self.cache.forget(self._key(cls, name))
        return remove_durably(self.path(cls, name))

    def next_rv(self) -> str:
        """Next value of the store-wide sequence; call only with the lock held."""
        raw = read_bytes(self._rv_path)
        try:
            last = int(raw or b"0")
        except ValueError:
            last = 0
        value = max(last + 1, 1)
        atomic_write(self._rv_path, str(value).encode())
        return str(value)


def materialize(cls: type[R], name: str, seen: Observed) -> R:
    """The API view of an object: spec from the user's file, server fields and status from state."""
    assert seen.state is not None
    state = seen.state
    server_fields = {
        "namespace": NAMESPACE,
        "uid": state["uid"],
        "resource_version": str(state["resourceVersion"]),
        "generation": int(state["generation"]),
        "creation_timestamp": datetime.fromisoformat(str(state["creationTimestamp"])),
    }
    if isinstance(seen.spec, SpecDocument):
        # One validation of document + server fields + status instead of validating the spec and
        # copying it twice; an unreadable status falls through to the path that drops it.
        document = seen.spec.data
        with contextlib.suppress(ValidationError):
            return cls.model_validate(
                {
                    **document,
                    "metadata": {**document["metadata"], **server_fields},
                    "status": state.get("status"),
                }
            )
    status = None
    if state.get("status") is not None:
        try:
            status = status_type(cls).model_validate(state["status"])
        except ValidationError as err:
            log.warning("ignoring unreadable status of %s: %s", name, format_validation_error(err))
    if seen.spec is None:
        # A broken spec (only update_status returns one): the default spec, the name as filed.
        meta = ObjectMeta.model_construct(
            name=name, labels={}, annotations={}, finalizers=[], **server_fields
        )
        return cls.model_construct(metadata=meta, status=status)
    resource = seen.resource
    assert resource is not None
    meta = resource.metadata.model_copy(update=server_fields)
    return typing.cast(R, resource.model_copy(update={"metadata": meta, "status": status}))
