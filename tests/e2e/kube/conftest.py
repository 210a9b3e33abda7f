"""Fixtures for the Kubernetes e2e suite: a real API server named by CLAWPEN_E2E_KUBECONFIG.

Everything the suite creates lives in one fresh namespace (deleted at the end) and carries a
unique Claw Pen instance id, so runs never touch each other's objects or anyone else's. The CRDs
are cluster-scoped: they are created (or updated to this checkout's version) and left installed.
The operator runs in this process — the real kopf registrations, KubeStore, KubernetesRuntime and
reconcile core — exactly what `clawpen operator` assembles, pointed at the test namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from controller import operator
from controller.kube.client import ApiException, RawApi, load_api_client
from controller.runtime.kubernetes import KubernetesRuntime
from controller.store.kube import KubeStore

# The test modules skip themselves when this is unset (see test_kube_e2e.py).
KUBECONFIG = os.environ.get("CLAWPEN_E2E_KUBECONFIG")

ROOT = Path(__file__).resolve().parents[3]
RESYNC = 1.0


async def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll an async or sync check until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass(frozen=True)
class ResolvedValue:
    name: str
    scope: str
    version: str


@dataclass
class MemorySecrets:
    """A SecretSource over a dict: the operator's secret store is not what this suite tests."""

    values: dict[str, bytes] = field(default_factory=dict)

    def resolve(self, agent: str, names: Iterable[str]) -> Mapping[str, ResolvedValue]:
        return {
            n: ResolvedValue(n, "global", hashlib.sha256(self.values[n]).hexdigest()[:8])
            for n in names
            if n in self.values
        }

    def read(self, info: ResolvedValue) -> bytes:
        return self.values[info.name]


@dataclass
class CountingReconciler:
    inner: Any
    calls: int = 0

    async def reconcile(self, key: str) -> Any:
        self.calls += 1
        return await self.inner.reconcile(key)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def raw() -> AsyncIterator[RawApi]:
    client = await load_api_client(KUBECONFIG)
    yield RawApi(client)
    await client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def crds(raw: RawApi) -> list[str]:
    names = []
    for path in sorted((ROOT / "crds").glob("*.clawpen.dev.yaml")):
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        try:
            await raw.create(base, body)
        except ApiException as err:
            if err.status != 409:
                raise
            await raw.merge_patch(f"{base}/{name}", {"spec": body["spec"]})
        names.append(name)

    async def established() -> bool:
        for name in names:
            crd = await raw.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
            if conditions.get("Established") != "True":
                return False
        return True

    await eventually(established, what="CRDs Established")
    return names


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def namespace(raw: RawApi) -> AsyncIterator[str]:
    name = f"cpe2e-{secrets.token_hex(4)}"
    await raw.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    yield name
    with contextlib.suppress(ApiException):
        await raw.delete(f"/api/v1/namespaces/{name}")


@dataclass
class OperatorHandle:
    """The in-process operator; restart() stops kopf and starts it again with the same parts."""

    namespace: str
    reconciler: CountingReconciler
    runtime: KubernetesRuntime
    store: KubeStore
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event | None = None

    async def start(self) -> None:
        self.stop, ready = asyncio.Event(), asyncio.Event()

        def login(**kwargs: Any) -> Any:
            os.environ["KUBECONFIG"] = str(KUBECONFIG)
            import kopf

            return kopf.login_with_kubeconfig(**kwargs)

        ctx = operator.OperatorContext(
            reconciler=self.reconciler, runtime=self.runtime, resync_seconds=RESYNC
        )
        self.task = asyncio.create_task(
            operator.run(
                ctx, namespaces=[self.namespace], stop_flag=self.stop, ready_flag=ready, login_fn=login
            )
        )
        await asyncio.wait_for(ready.wait(), timeout=60)

    async def shutdown(self) -> None:
        if self.stop is not None and self.task is not None:
            self.stop.set()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.task, timeout=60)

    async def restart(self) -> None:
        await self.shutdown()
        await self.start()


def make_reconciler(
    store: KubeStore, runtime: KubernetesRuntime, instance: str, values: MemorySecrets
) -> Any:
    reconcile = pytest.importorskip(
        "controller.reconcile", reason="the reconcile core is not on this branch yet"
    )
    from controller.catalog import load_catalog

    catalog = load_catalog(ROOT / "templates")
    return reconcile.Reconciler(
        store, runtime, catalog, instance=instance, image="clawpen/agent:e2e", secrets=values, environ={}
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(crds: list[str], namespace: str) -> AsyncIterator[dict[str, Any]]:
    client_store = await load_api_client(KUBECONFIG)
    client_runtime = await load_api_client(KUBECONFIG)
    instance = f"e2e{secrets.token_hex(3)}"
    store = KubeStore(client_store, namespace=namespace)
    runtime = KubernetesRuntime(client_runtime, instance=instance)
    values = MemorySecrets({"E2E_TOKEN": b"e2e-secret-value"})
    handle = OperatorHandle(
        namespace, CountingReconciler(make_reconciler(store, runtime, instance, values)), runtime, store
    )
    await handle.start()
    try:
        yield {
            "operator": handle,
            "store": store,
            "runtime": runtime,
            "instance": instance,
            "namespace": namespace,
        }
    finally:
        await handle.shutdown()
        await store.close()
        await runtime.close()
