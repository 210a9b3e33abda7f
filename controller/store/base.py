"""The Store interface: Kubernetes API semantics, whether backed by YAML files or by CRDs.

Everything above the store (controller, gateway, CLI) speaks only this interface, which is why the
same reconcile core runs on a laptop and under kopf. Semantics follow the Kubernetes API:
- create fails with Conflict if the name exists; it sets uid, creationTimestamp, generation=1.
- replace requires metadata.resourceVersion to match (else Conflict, HTTP 409); generation bumps
  only when spec changes; status in the argument is ignored.
- update_status writes only status (never bumps generation); spec in the argument is ignored.
- An object whose stored form is corrupt is reported by get() as InvalidObject and by
  list_broken(); list() returns the healthy ones so one bad file never hides the others.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from controller.resources import AgentStatus, Resource, TeamStatus

R = TypeVar("R", bound=Resource)


class StoreError(Exception):
    """Base of store errors; `status` is the HTTP status the gateway answers with."""

    status = 500


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    """Name taken on create, or a stale resourceVersion on replace."""

    status = 409


class InvalidObject(StoreError):
    """The stored object exists but cannot be read (corrupt YAML, invalid spec)."""

    status = 422

    def __init__(self, kind: str, namespace: str, name: str, message: str):
        super().__init__(f"{kind} {namespace}/{name}: {message}")
        self.kind, self.namespace, self.name, self.message = kind, namespace, name, message


@dataclass(frozen=True)
class BrokenObject:
    kind: str
    namespace: str
    name: str
    error: str
    path: str | None = None


@dataclass(frozen=True)
class WatchEvent:
    """Something changed for (kind, namespace, name); consumers re-read the object (level-triggered)."""

    type: Literal["ADDED", "MODIFIED", "DELETED", "BROKEN"]
    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Store(Protocol):
    """Desired and observed state of Agents and Teams."""

    kind_name: str  # "files" or "kube", shown by /api/runtime/status

    async def get(self, cls: type[R], name: str, namespace: str = "default") -> R: ...

    async def list(self, cls: type[R], namespace: str | None = None) -> list[R]: ...

    async def list_broken(
        self, cls: type[Resource], namespace: str | None = None
    ) -> builtins.list[BrokenObject]: ...

    async def create(self, obj: R) -> R: ...

    async def replace(self, obj: R) -> R: ...

    async def update_status(
        self, cls: type[R], name: str, status: AgentStatus | TeamStatus, namespace: str = "default"
    ) -> R: ...

    async def delete(self, cls: type[Resource], name: str, namespace: str = "default") -> None: ...

    def watch(self, cls: type[Resource], *, status: bool = False) -> AsyncIterator[WatchEvent]:
        """Changes after the call. Spec changes always; status writes only with `status=True` (the
        controller leaves it off so its own status writes never wake it; a dashboard turns it on)."""
        ...

    async def close(self) -> None: ...


async def list_shared(store: Store, cls: type[R], namespace: str | None = None) -> builtins.list[R]:
    """store.list() for callers that only read what they get: a store that can hand out shared,
    already-validated objects (the FileStore's list_shared) does, any other lists as usual."""
    shared = getattr(store, "list_shared", None)
    if shared is None:
        return await store.list(cls, namespace)
    found: builtins.list[R] = await shared(cls, namespace)
    return found
