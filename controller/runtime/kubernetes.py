"""KubernetesRuntime: the Runtime interface over StatefulSets, Services, Secrets and NetworkPolicies.

What to create is decided by controller.kube.objects (pure, golden-tested); this module only talks
to the API server: create-or-patch each object, scale for start/stop, read the StatefulSet and its
pod back into an Observed (controller.kube.observe), stream logs, read metrics.

Updates are JSON merge patches of the fields we own (labels, ownerReferences, the pod template,
replicas, a Service's selector and ports...) so that what the API server defaults or other
controllers add (clusterIP, annotations from `kubectl rollout restart`) is left alone, and the same
calls work against kmock in CI. A StatefulSet does not replace a pod that never became ready when
its template changes (kubernetes#67250), so apply() deletes such a pod itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import aiohttp

from controller.kube import objects
from controller.kube.client import (
    ApiClient,
    ApiException,
    RawApi,
    error_message,
    load_api_client,
    merge_patch,
)
from controller.kube.observe import observed_from
from controller.kube.quantity import cpu_cores, memory_bytes
from controller.plan import (
    AGENT_PORT,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_NAMESPACE,
    LABEL_PLAN_HASH,
    WorkloadPlan,
)
from controller.resources import API_GROUP
from controller.runtime.base import LogLine, Observed, RuntimeError_, RuntimeEvent, RuntimeUnavailable, Stats

log = logging.getLogger("clawpen.runtime.kubernetes")

FOLLOW_TIMEOUT = 24 * 3600.0


def _split(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    if not namespace or not name:
        raise RuntimeError_(f"bad agent key {key!r} (want namespace/name)", reason="InvalidKey")
    return namespace, name


def _paths(namespace: str, name: str) -> dict[str, str]:
    workload = objects.workload_name(name)
    return {
        "StatefulSet": f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{workload}",
        "Service": f"/api/v1/namespaces/{namespace}/services/{workload}",
        "Secret": f"/api/v1/namespaces/{namespace}/secrets/{objects.secret_name(name)}",
        "NetworkPolicy": f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{workload}",
    }


def _collection(path: str) -> str:
    return path.rsplit("/", 1)[0]


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, api_client: ApiClient | None, instance: str, options: objects.KubeOptions | None = None):
        self.api_client = api_client
        self.raw = RawApi(api_client) if api_client is not None else None
        self.instance = instance
        self.options = options or objects.KubeOptions()

    @classmethod
    def from_settings(cls, settings: Any) -> KubernetesRuntime:
        """For wiring: the ApiClient is configured lazily, on first use, inside the event loop."""
        import os

        options = objects.KubeOptions(
            cluster_domain=os.environ.get("CLAWPEN_CLUSTER_DOMAIN", "cluster.local"),
            allowed_namespace=os.environ.get("CLAWPEN_SYSTEM_NAMESPACE", "clawpen-system"),
            storage_class=os.environ.get("CLAWPEN_STORAGE_CLASS") or None,
        )
        return cls(None, settings.instance, options)

    async def _api(self) -> RawApi:
        if self.raw is None:
            self.api_client = await load_api_client()
            self.raw = RawApi(self.api_client)
        return self.raw

    async def _call(self, what: str, method: str, path: str, **kwargs: Any) -> Any:
        api = await self._api()
        try:
            return await api.request(method, path, **kwargs)
        except ApiException as err:
            reason = {403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid"}.get(
                err.status or 0, "KubernetesError"
            )
            raise RuntimeError_(f"{what}: {error_message(err)}", reason=reason) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise RuntimeUnavailable(f"{what}: the Kubernetes API server is unreachable ({err})") from None

    async def _get_or_none(self, what: str, path: str, **query: Any) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call(what, "GET", path, query=query)
            return result
        except RuntimeError_ as err:
            if err.reason == "NotFound":
                return None
            raise

    def _selector(self, namespace: str | None = None, name: str | None = None) -> str:
        parts = {LABEL_MANAGED: "clawpen", LABEL_INSTANCE: self.instance}
        if namespace and name:
            parts.update({LABEL_NAMESPACE: namespace, LABEL_NAME: name})
        return ",".join(f"{k}={v}" for k, v in parts.items())

    # ---- observe ---------------------------------------------------------------------------------

    async def version(self) -> str:
        info = await self._call("server version", "GET", "/version")
        return f"Kubernetes {info.get('gitVersion', '?')}"

    async def _pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        pods = await self._call(
            f"pods of {namespace}/{name}",
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query={"labelSelector": self._selector(namespace, name)},
        )
        items = sorted(pods.get("items") or [], key=lambda p: p["metadata"]["name"])
        return items[0] if items else None

    async def observe(self, key: str) -> Observed:
        namespace, name = _split(key)
        sts = await self._get_or_none(f"StatefulSet of {key}", _paths(namespace, name)["StatefulSet"])
        if sts is not None and (sts["metadata"].get("labels") or {}).get(LABEL_INSTANCE) != self.instance:
            return Observed(key=key, exists=False, error="a StatefulSet of that name belongs to someone else")
        pod = await self._pod(namespace, name) if sts is not None else None
        return observed_from(key, sts, pod, self._endpoint(namespace, name))

    async def read_secret_value(self, key: str, item: str) -> str | None:
        """One item of the agent's Secret (base64, as the API returns it); None when absent or not ours."""
        namespace, name = _split(key)
        secret = await self._get_or_none(f"Secret of {key}", _paths(namespace, name)["Secret"])
        if secret is None or (secret["metadata"].get("labels") or {}).get(LABEL_INSTANCE) != self.instance:
            return None
        value = (secret.get("data") or {}).get(item)
        return str(value) if value else None

    def _endpoint(self, namespace: str, name: str) -> str:
        workload = objects.workload_name(name)
        return f"http://{workload}.{namespace}.svc.{self.options.cluster_domain}:{AGENT_PORT}"

    async def list_owned(self) -> list[Observed]:
        selector = f"{LABEL_MANAGED}=clawpen,{LABEL_INSTANCE}={self.instance}"
        sets = await self._call(
            "owned StatefulSets", "GET", "/apis/apps/v1/statefulsets", query={"labelSelector": selector}
        )
        pods = await self._call("owned pods", "GET", "/api/v1/pods", query={"labelSelector": selector})
        pod_by_key: dict[str, dict[str, Any]] = {}
        for pod in pods.get("items") or []:
            labels = pod["metadata"].get("labels") or {}
            pod_by_key.setdefault(f"{labels.get(LABEL_NAMESPACE)}/{labels.get(LABEL_NAME)}", pod)
        result = []
        for sts in sets.get("items") or []:
            labels = sts["metadata"].get("labels") or {}
            namespace, name = labels.get(LABEL_NAMESPACE, ""), labels.get(LABEL_NAME, "")
            key = f"{namespace}/{name}"
            result.append(observed_from(key, sts, pod_by_key.get(key), self._endpoint(namespace, name)))
        return sorted(result, key=lambda o: o.key)

    # ---- act -------------------------------------------------------------------------------------

    async def _owner(self, plan: WorkloadPlan) -> objects.Owner | None:
        """The Agent custom resource, when there is one (the store may be files, the runtime kube)."""
        path = f"/apis/{API_GROUP}/v1alpha1/namespaces/{plan.namespace}/agents/{plan.name}"
        try:
            agent = await self._get_or_none(f"Agent {plan.key}", path)
        except RuntimeError_ as err:
            if err.reason == "NotFound" or err.reason == "Forbidden":
                return None
            raise
        if agent is None or not agent["metadata"].get("uid"):
            return None
        return objects.Owner(name=plan.name, uid=agent["metadata"]["uid"])

    async def _upsert(self, obj: dict[str, Any], path: str, patch_of: Any) -> None:
        what = f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
        current = await self._get_or_none(what, path)
        if current is None:
            await self._call(what, "POST", _collection(path), body=obj)
            return
        current_labels = current["metadata"].get("labels") or {}
        if current_labels.get(LABEL_MANAGED) != "clawpen" or current_labels.get(LABEL_INSTANCE) != self.instance:
            raise RuntimeError_(f"{what} exists and is not managed by this Claw Pen instance", reason="NameTaken")
        patch = {
            "metadata": {
                "labels": merge_patch(current_labels, obj["metadata"]["labels"]),
                "ownerReferences": obj["metadata"].get("ownerReferences"),
            },
            **patch_of(current, obj),
        }
        await self._call(what, "PATCH", path, body=patch, content_type="application/merge-patch+json")

    async def apply(self, plan: WorkloadPlan, secret_values: Mapping[str, bytes] | None = None) -> Observed:
        try:
            built = objects.build(plan, secret_values, await self._owner(plan), self.options)
        except objects.UnsupportedPlan as err:
            raise RuntimeError_(f"agent {plan.key}: {err}", reason="UnsupportedPlan") from None
        paths = _paths(plan.namespace, plan.name)
        await self._upsert(
            built.secret,
            paths["Secret"],
            # An empty patch of data (nothing changed) is a no-op; removed names become nulls.
            lambda cur, new: {"data": merge_patch(cur.get("data") or {}, new["data"])},
        )
        await self._upsert(
            built.service,
            paths["Service"],
            lambda cur, new: {"spec": {"selector": new["spec"]["selector"], "ports": new["spec"]["ports"]}},
        )
        await self._upsert(built.network_policy, paths["NetworkPolicy"], lambda cur, new: {"spec": new["spec"]})
        await self._upsert(built.statefulset, paths["StatefulSet"], self._statefulset_patch)
        await self._replace_stuck_pod(plan)
        log.info("applied %s (plan %s, replicas %d)", plan.key, plan.hash, 1 if plan.running else 0)
        return await self.observe(plan.key)

    @staticmethod
    def _statefulset_patch(current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        old_template_labels = ((current["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        template = new["spec"]["template"]
        return {
            "spec": {
                "replicas": new["spec"]["replicas"],
                "template": {
                    "metadata": {"labels": merge_patch(old_template_labels, template["metadata"]["labels"])},
                    "spec": template["spec"],
                },
            }
        }

    async def _replace_stuck_pod(self, plan: WorkloadPlan) -> None:
        pod = await self._pod(plan.namespace, plan.name)
        if pod is None:
            return
        labels = pod["metadata"].get("labels") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
        if labels.get(LABEL_PLAN_HASH) != plan.hash and not ready:
            pod_name = pod["metadata"]["name"]
            log.info(
                "deleting never-ready pod %s/%s so it is recreated from the new template",
                plan.namespace,
                pod_name,
            )
            try:
                await self._call(f"pod {pod_name}", "DELETE", f"/api/v1/namespaces/{plan.namespace}/pods/{pod_name}")
            except RuntimeError_ as err:
                if err.reason != "NotFound":
                    raise

    async def _scale(self, key: str, replicas: int) -> None:
        namespace, name = _split(key)
        path = _paths(namespace, name)["StatefulSet"]
        await self._call(
            f"scale {key}",
            "PATCH",
            path,
            body={"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    async def start(self, key: str) -> None:
        await self._scale(key, 1)

    async def stop(self, key: str) -> None:
        await self._scale(key, 0)

    async def remove(self, key: str, *, volumes: bool = False) -> None:
        namespace, name = _split(key)
        for kind, path in reversed(list(_paths(namespace, name).items())):
            try:
                await self._call(f"delete {kind} of {key}", "DELETE", path, query={"propagationPolicy": "Background"})
            except RuntimeError_ as err:
                if err.reason != "NotFound":
                    raise
        if volumes:
            claims = await self._call(
                f"volumes of {key}",
                "GET",
                f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
                query={"labelSelector": self._selector(namespace, name)},
            )
            for claim in claims.get("items") or []:
                claim_name = claim["metadata"]["name"]
                try:
                    await self._call(
                        f"delete volume {claim_name}",
                        "DELETE",
                        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim_name}",
                    )
                except RuntimeError_ as err:
                    if err.reason != "NotFound":
                        raise

    # ---- streams ---------------------------------------------------------------------------------

    async def _require_pod(self, key: str) -> dict[str, Any]:
        namespace, name = _split(key)
        pod = await self._pod(namespace, name)
        if pod is None:
            raise RuntimeError_(f"agent {key} has no pod (it is stopped or not created yet)", reason="NotRunning")
        return pod

    async def logs(self, key: str, *, tail: int | None = 100, follow: bool = False) -> AsyncIterator[LogLine]:
        pod = await self._require_pod(key)
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/log"
        query = {"container": objects.CONTAINER, "timestamps": True, "follow": follow, "tailLines": tail}
        api = await self._api()
        try:
            response = await api.open("GET", path, query=query, timeout=FOLLOW_TIMEOUT if follow else 60.0)
        except ApiException as err:
            raise RuntimeError_(f"logs of {key}: {error_message(err)}", reason="LogsUnavailable") from None
        try:
            async for raw in response.response.content:
                yield parse_log_line(raw.decode(errors="replace").rstrip("\n"))
        finally:
            response.response.release()

    async def stats(self, key: str) -> Stats:
        pod = await self._require_pod(key)
        meta = pod["metadata"]
        path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        try:
            metrics = await self._call(f"metrics of {key}", "GET", path)
        except RuntimeError_ as err:
            raise RuntimeError_(
                f"stats of {key}: the metrics API is not available ({err}); install metrics-server",
                reason="StatsUnavailable",
            ) from None
        usage: dict[str, Any] = next(
            (c["usage"] for c in metrics.get("containers", []) if c["name"] == objects.CONTAINER), {}
        )
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == objects.CONTAINER)
        limit = (spec.get("resources") or {}).get("limits") or {}
        return Stats(
            memory_mb=memory_bytes(usage.get("memory", "0")) / 2**20,
            memory_limit_mb=memory_bytes(limit.get("memory", "0")) / 2**20,
            cpu_percent=cpu_cores(usage.get("cpu", "0")) * 100.0,
            network_rx_bytes=0,  # not in the metrics API; the kubelet's summary API needs node access
            network_tx_bytes=0,
        )

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        """Pod changes of this instance's agents, as Docker-like actions (start, die, oom, destroy)."""
        api = await self._api()
        query = {"labelSelector": self._selector(), "watch": True, "allowWatchBookmarks": False}
        response = await api.open("GET", "/api/v1/pods", query=query, timeout=FOLLOW_TIMEOUT)
        try:
            async for raw in response.response.content:
                event = _json_line(raw)
                if not event or event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                    continue
                pod = event.get("object") or {}
                labels = (pod.get("metadata") or {}).get("labels") or {}
                key = f"{labels.get(LABEL_NAMESPACE, '')}/{labels.get(LABEL_NAME, '')}"
                yield RuntimeEvent(key=key, action=_pod_action(event["type"], pod))
        finally:
            response.response.release()

    async def close(self) -> None:
        if self.api_client is not None:
            await self.api_client.close()


def _json_line(raw: bytes) -> dict[str, Any] | None:
    import json

    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _pod_action(kind: str, pod: dict[str, Any]) -> str:
    if kind == "DELETED":
        return "destroy"
    from controller.kube.observe import container_status

    status = container_status(pod)
    last = (status.get("lastState") or {}).get("terminated") or {}
    state = status.get("state") or {}
    if last.get("reason") == "OOMKilled" or (state.get("terminated") or {}).get("reason") == "OOMKilled":
        return "oom"
    if "terminated" in state or (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff":
        return "die"
    if "running" in state:
        return "start"
    return "update"


_LEVELS = ("debug", "info", "warning", "warn", "error", "critical", "fatal")


def parse_log_line(line: str) -> LogLine:
    """`<RFC3339Nano timestamp> <message>` (the kubelet's format with timestamps=true)."""
    stamp, _, message = line.partition(" ")
    timestamp: datetime | None
    try:
        head, _, frac = stamp.rstrip("Z").partition(".")
        timestamp = datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00" if frac else f"{head}+00:00")
    except ValueError:
        timestamp, message = None, line
    lowered = message[:80].lower()
    level = next((lvl for lvl in _LEVELS if lvl in lowered), "info")
    return LogLine(
        timestamp=timestamp, level={"warn": "warning", "fatal": "critical"}.get(level, level), message=message
    )
