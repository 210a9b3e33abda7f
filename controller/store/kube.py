"""KubeStore: the Store interface over the Agent and Team custom resources (`CLAWPEN_STORE=kube`).

The API server already has the semantics the Store interface was modelled on — resourceVersion
preconditions (409), generation bumped only by spec changes, a status subresource — so this module
mostly translates: pydantic models ↔ JSON, ApiException ↔ StoreError, watch stream ↔ WatchEvent.

replace() is a JSON merge patch carrying the caller's resourceVersion (the API server treats it as a
precondition and answers 409 when it is stale) rather than a PUT, so that fields this store does
not model — finalizers added by the operator, ownerReferences, other tools' annotations — survive a
replace by a client that never saw them. update_status() merge-patches the status subresource with
explicit nulls, so a field the controller cleared is removed rather than left stale.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from kubernetes.aio import client as kclient
from kubernetes.aio import watch as kwatch
from pydantic import ValidationError

from controller.kube.client import ApiClient, ApiException, error_message, load_api_client, merge_patch
from controller.resources import API_GROUP, AgentStatus, Resource, TeamStatus, format_validation_error
from controller.store.base import BrokenObject, Conflict, InvalidObject, NotFound, StoreError, WatchEvent

log = logging.getLogger("clawpen.store.kube")

R = TypeVar("R", bound=Resource)
VERSION = "v1alpha1"
MERGE_PATCH = "application/merge-patch+json"
STATUS_TYPES: dict[str, type[AgentStatus] | type[TeamStatus]] = {"Agent": AgentStatus, "Team": TeamStatus}
WATCH_TIMEOUT_SECONDS = 300  # server-side; the loop re-watches from the last resourceVersion


class StoreUnavailable(StoreError):
    status = 503


class Rejected(StoreError):
    """The API server refused the object (CRD schema validation, admission): the caller's mistake."""

    status = 422


class Forbidden(StoreError):
    """RBAC does not allow it: a deployment problem, reported as such rather than as a crash."""

    status = 403


class KubeStore:
    """Agents and Teams as custom resources in one cluster."""

    kind_name = "kube"

    def __init__(self, api_client: ApiClient, namespace: str = "default"):
        self.api_client = api_client
        self.api = kclient.CustomObjectsApi(api_client)
        self.namespace = namespace

    @classmethod
    async def connect(cls, namespace: str = "default", kubeconfig: str | None = None) -> KubeStore:
        return cls(await load_api_client(kubeconfig), namespace)

    @classmethod
    def from_settings(cls, settings: Any) -> KubeStore:
        """For wiring: the ApiClient is configured lazily, on first use, inside the event loop."""
        store = cls.__new__(cls)
        store.api_client = None  # type: ignore[assignment]
        store.api = None  # type: ignore[assignment]
        store.namespace = settings.namespace
        return store

    async def _ready(self) -> kclient.CustomObjectsApi:
        if self.api is None:
            self.api_client = await load_api_client()
            self.api = kclient.CustomObjectsApi(self.api_client)
        return self.api

    # ---- conversion ----------------------------------------------------------------------------

    @staticmethod
    def _parse(cls: type[R], body: dict[str, Any]) -> R:
        meta = body.get("metadata") or {}
        try:
            return cls.model_validate(body)
        except ValidationError as err:
            raise InvalidObject(
                cls.KIND, meta.get("namespace", "?"), meta.get("name", "?"), format_validation_error(err)
            ) from None

    @staticmethod
    def _body(obj: Resource) -> dict[str, Any]:
        meta = obj.metadata
        body: dict[str, Any] = {
            "apiVersion": obj.api_version,
            "kind": obj.KIND,
            "metadata": {"name": meta.name, "namespace": meta.namespace},
            "spec": obj.spec.dump(),  # type: ignore[attr-defined]
        }
        for field in ("labels", "annotations", "finalizers"):
            if getattr(meta, field):
                body["metadata"][field] = getattr(meta, field)
        return body

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except ApiException as err:
            message = f"{what}: {error_message(err)}"
            if err.status == 404:
                raise NotFound(message) from None
            if err.status == 409:
                raise Conflict(message) from None
            if err.status in (400, 422):
                raise Rejected(message) from None
            if err.status in (401, 403):
                raise Forbidden(message) from None
            raise StoreError(message) from None
        except (TimeoutError, OSError) as err:
            raise StoreUnavailable(f"{what}: the Kubernetes API server is unreachable ({err})") from None

    # ---- Store interface -----------------------------------------------------------------------

    async def get(self, cls: type[R], name: str, namespace: str | None = None) -> R:
        ns = namespace or self.namespace
        api = await self._ready()
        body = await self._call(
            f"{cls.KIND} {ns}/{name}",
            api.get_namespaced_custom_object(API_GROUP, VERSION, ns, cls.PLURAL, name),
        )
        return self._parse(cls, body)

    async def get_status(self, cls: type[Resource], name: str, namespace: str | None = None) -> Any:
        """The stored status alone, readable even when the spec is not (for InvalidObject reports)."""
        ns = namespace or self.namespace
        api = await self._ready()
        body = await self._call(
            f"{cls.KIND} {ns}/{name}",
            api.get_namespaced_custom_object(API_GROUP, VERSION, ns, cls.PLURAL, name),
        )
        status_type = STATUS_TYPES[cls.KIND]
        raw = body.get("status")
        return status_type.model_validate(raw) if isinstance(raw, dict) else None

    async def _list_raw(self, cls: type[Resource], namespace: str | None) -> list[dict[str, Any]]:
        api = await self._ready()
        if namespace is None:
            call = api.list_cluster_custom_object(API_GROUP, VERSION, cls.PLURAL)
        else:
            call = api.list_namespaced_custom_object(API_GROUP, VERSION, namespace, cls.PLURAL)
        result = await self._call(f"list {cls.PLURAL}", call)
        items: list[dict[str, Any]] = result.get("items", [])
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    async def release_finalizer(self, cls: type[Resource], finalizer: str) -> list[str]:
        """Drop `finalizer` from every object of this kind (all namespaces); returns their keys.

        For uninstalling: once the operator is gone nothing would ever remove it, and the objects,
        their namespaces and the CRD would stay Terminating for good.
        """
        api = await self._ready()
        released = []
        for body in await self._list_raw(cls, None):
            meta = body["metadata"]
            finalizers = meta.get("finalizers") or []
            if finalizer not in finalizers:
                continue
            ns, name = meta.get("namespace", self.namespace), meta["name"]
            patch = {
                "metadata": {
                    "finalizers": [f for f in finalizers if f != finalizer],
                    "resourceVersion": meta.get("resourceVersion"),
                }
            }
            await self._call(
                f"release {cls.KIND} {ns}/{name}",
                api.patch_namespaced_custom_object(
                    API_GROUP, VERSION, ns, cls.PLURAL, name, patch, _content_type=MERGE_PATCH
                ),
            )
            released.append(f"{ns}/{name}")
        return released

    async def list(self, cls: type[R], namespace: str | None = None) -> list[R]:
        healthy = []
        for body in await self._list_raw(cls, namespace):
            try:
                healthy.append(self._parse(cls, body))
            except InvalidObject:
                continue  # reported by list_broken(); one bad object never hides the others
        return healthy

    async def list_broken(
        self, cls: type[Resource], namespace: str | None = None
    ) -> builtins.list[BrokenObject]:
        broken = []
        for body in await self._list_raw(cls, namespace):
            try:
                self._parse(cls, body)
            except InvalidObject as err:
                broken.append(BrokenObject(cls.KIND, err.namespace, err.name, err.message))
        return broken

    async def create(self, obj: R) -> R:
        cls, ns = type(obj), obj.metadata.namespace
        api = await self._ready()
        body = await self._call(
            f"{cls.KIND} {ns}/{obj.name}",
            api.create_namespaced_custom_object(API_GROUP, VERSION, ns, cls.PLURAL, self._body(obj)),
        )
        if not body:  # some servers answer 200 with no body the client deserializes; read it back
            return await self.get(cls, obj.name, ns)
        return self._parse(cls, body)

    async def replace(self, obj: R) -> R:
        cls, ns, name = type(obj), obj.metadata.namespace, obj.metadata.name
        api = await self._ready()
        what = f"{cls.KIND} {ns}/{name}"
        current = await self._call(
            what, api.get_namespaced_custom_object(API_GROUP, VERSION, ns, cls.PLURAL, name)
        )
        meta = current.get("metadata", {})
        if obj.metadata.uid is not None and meta.get("uid") not in (None, obj.metadata.uid):
            raise Conflict(f"{what}: uid {obj.metadata.uid} does not match (it was deleted and re-created)")
        wanted = self._body(obj)
        patch: dict[str, Any] = {
            "metadata": {
                "resourceVersion": obj.metadata.resource_version or meta.get("resourceVersion"),
                "labels": merge_patch(meta.get("labels") or {}, obj.metadata.labels) or None,
                "annotations": merge_patch(meta.get("annotations") or {}, obj.metadata.annotations) or None,
            },
            "spec": merge_patch(current.get("spec") or {}, wanted["spec"]),
        }
        patch["metadata"] = {k: v for k, v in patch["metadata"].items() if v is not None}
        body = await self._call(
            what,
            api.patch_namespaced_custom_object(
                API_GROUP, VERSION, ns, cls.PLURAL, name, patch, _content_type=MERGE_PATCH
            ),
        )
        return self._parse(cls, body)

    async def update_status(
        self, cls: type[R], name: str, status: AgentStatus | TeamStatus, namespace: str | None = None
    ) -> R:
        ns = namespace or self.namespace
        api = await self._ready()
        patch = {"status": status.model_dump(by_alias=True, mode="json")}  # nulls clear stale fields
        body = await self._call(
            f"{cls.KIND} {ns}/{name} status",
            api.patch_namespaced_custom_object_status(
                API_GROUP, VERSION, ns, cls.PLURAL, name, patch, _content_type=MERGE_PATCH
            ),
        )
        return self._parse(cls, body)

    async def delete(self, cls: type[Resource], name: str, namespace: str | None = None) -> None:
        ns = namespace or self.namespace
        api = await self._ready()
        await self._call(
            f"{cls.KIND} {ns}/{name}",
            api.delete_namespaced_custom_object(API_GROUP, VERSION, ns, cls.PLURAL, name),
        )

    async def watch(  # type: ignore[override]
        self, cls: type[Resource], *, status: bool = False
    ) -> AsyncIterator[WatchEvent]:
        """Changes after this call, in every namespace. The API server reports status-subresource
        writes as MODIFIED anyway, so `status` changes nothing here. Re-watches from the last resourceVersion
        when the server ends a stream; after a 410 (history compacted) it lists again and reports
        every object as MODIFIED, which is safe because consumers re-read (level-triggered)."""
        api = await self._ready()
        listing = await self._call(
            f"list {cls.PLURAL}", api.list_cluster_custom_object(API_GROUP, VERSION, cls.PLURAL)
        )
        version = (listing.get("metadata") or {}).get("resourceVersion")
        while True:
            watcher = kwatch.Watch()
            try:
                async for event in watcher.stream(
                    api.list_cluster_custom_object,
                    API_GROUP,
                    VERSION,
                    cls.PLURAL,
                    resource_version=version,
                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    allow_watch_bookmarks=True,
                ):
                    kind, obj = event.get("type"), event.get("object") or {}
                    meta = obj.get("metadata") or {}
                    version = meta.get("resourceVersion", version)
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise _Gone
                        log.warning("watch %s: %s", cls.PLURAL, obj.get("message"))
                        continue
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        yield WatchEvent(kind, cls.KIND, meta.get("namespace", ""), meta["name"])
            except _Gone:
                listing = await self._call(
                    f"list {cls.PLURAL}", api.list_cluster_custom_object(API_GROUP, VERSION, cls.PLURAL)
                )
                version = (listing.get("metadata") or {}).get("resourceVersion")
                for item in listing.get("items", []):
                    meta = item["metadata"]
                    yield WatchEvent("MODIFIED", cls.KIND, meta.get("namespace", ""), meta["name"])
            except ApiException as err:
                if err.status == 410:
                    version = None
                    continue
                raise StoreError(f"watch {cls.PLURAL}: {error_message(err)}") from None
            except (TimeoutError, OSError) as err:
                log.warning("watch %s interrupted (%s); re-watching", cls.PLURAL, err)
                await asyncio.sleep(1.0)
            finally:
                watcher.stop()

    async def close(self) -> None:
        if self.api_client is not None:
            await self.api_client.close()


class _Gone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): list again."""
