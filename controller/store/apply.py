"""Apply one resource to a store as `kubectl apply` does: create it, or replace its spec, labels and
annotations, and say which ("created", "configured", "unchanged").

Why here, in the store package: both the local `clawpen apply` (controller/commands/resources.py) and
the gateway's POST /api/apply (api/routes/apply.py) apply manifests, and the gateway must not depend on
a CLI module. A stored object that no longer validates (InvalidObject: an older schema, a hand edit) is
replaced whole, so applying a good manifest repairs it.
"""

from __future__ import annotations

from controller.resources import Resource
from controller.store.base import InvalidObject, NotFound, Store


async def apply_resource(store: Store, obj: Resource, dry_run: bool = False) -> str:
    cls = type(obj)
    try:
        current = await store.get(cls, obj.name, obj.metadata.namespace)
    except NotFound:
        if not dry_run:
            await store.create(obj)
        return "created"
    except InvalidObject:
        if not dry_run:
            await store.delete(cls, obj.name, obj.metadata.namespace)
            await store.create(obj)
        return "configured"
    same = current.spec == obj.spec and current.metadata.labels == obj.metadata.labels  # type: ignore[attr-defined]
    if same and current.metadata.annotations == obj.metadata.annotations:
        return "unchanged"
    if dry_run:
        return "configured"
    updated = current.model_copy(deep=True)
    updated.spec = obj.spec  # type: ignore[attr-defined]
    updated.metadata.labels = obj.metadata.labels
    updated.metadata.annotations = obj.metadata.annotations
    await store.replace(updated)
    return "configured"
