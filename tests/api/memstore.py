"""TEMPORARY stand-in for controller.store.files.FileStore until it lands on main (then deleted)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator

from controller.resources import Resource, now
from controller.store.base import Conflict, NotFound


class MemoryStore:
    kind_name = "memory"

    def __init__(self) -> None:
        self.objs: dict[tuple[str, str, str], Resource] = {}
        self.rv = 0

    def _next(self) -> str:
        self.rv += 1
        return str(self.rv)

    async def get(self, cls, name, namespace="default"):
        try:
            return copy.deepcopy(self.objs[(cls.KIND, namespace, name)])
        except KeyError:
            raise NotFound(f"{cls.KIND} {namespace}/{name} not found") from None

    async def list(self, cls, namespace=None):
        return [copy.deepcopy(o) for (k, ns, _), o in self.objs.items() if k == cls.KIND and namespace in (None, ns)]

    async def list_broken(self, cls, namespace=None):
        return []

    async def create(self, obj):
        key = (obj.KIND, obj.metadata.namespace, obj.metadata.name)
        if key in self.objs:
            raise Conflict(f"{obj.KIND} {obj.metadata.name} already exists")
        obj = copy.deepcopy(obj)
        obj.metadata.uid = uuid.uuid4().hex
        obj.metadata.generation = 1
        obj.metadata.creation_timestamp = now()
        obj.metadata.resource_version = self._next()
        obj.status = None
        self.objs[key] = obj
        return copy.deepcopy(obj)

    async def replace(self, obj):
        key = (obj.KIND, obj.metadata.namespace, obj.metadata.name)
        old = self.objs.get(key)
        if old is None:
            raise NotFound(f"{obj.KIND} {obj.metadata.name} not found")
        if obj.metadata.resource_version != old.metadata.resource_version:
            raise Conflict(f"{obj.KIND} {obj.metadata.name}: stale resourceVersion")
        new = copy.deepcopy(obj)
        new.status = old.status
        new.metadata.generation = old.metadata.generation + (1 if new.spec != old.spec else 0)
        new.metadata.resource_version = self._next()
        self.objs[key] = new
        return copy.deepcopy(new)

    async def update_status(self, cls, name, status, namespace="default"):
        obj = self.objs[(cls.KIND, namespace, name)]
        obj.status = copy.deepcopy(status)
        obj.metadata.resource_version = self._next()
        return copy.deepcopy(obj)

    async def delete(self, cls, name, namespace="default"):
        if self.objs.pop((cls.KIND, namespace, name), None) is None:
            raise NotFound(f"{cls.KIND} {namespace}/{name} not found")

    async def watch(self, cls) -> AsyncIterator:  # pragma: no cover
        raise NotImplementedError
        yield

    async def close(self):
        pass
