"""The real operator (kopf) against kmock, kopf's Kubernetes API emulator: the kube tests' shared steps.

Several tests start `controller.operator.run` against kmock, wait until kopf says it is ready, poll
for what the operator should have done, and stop it again. One copy of those steps keeps the
resource declarations kopf needs, the timeouts and the shutdown order the same in every test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import kmock
import kopf

from controller import operator

AGENTS = "clawpen.dev/v1alpha1/agents"


async def eventually(check: Callable[[], Any], timeout: float = 20.0, what: Callable[[], Any] = str) -> None:
    """Wait until `check()` is truthy; on timeout fail with `what()` as the state to look at."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out; state: {what()}") from None


async def settled(check: Callable[[], Any], *, what: Callable[[], Any] = str, quiet: float = 1.0) -> Any:
    """Wait until `check()` is truthy, stay quiet `quiet` seconds (several operator passes), then
    return `check()` again: how a test sees that something was said once, not once per pass."""
    await eventually(check, what=what)
    await asyncio.sleep(quiet)
    return check()


def posted_events(server: kmock.KubernetesEmulator, kind: str | None = None, name: str | None = None) -> list[Any]:
    """The Kubernetes Events posted to `server` so far, optionally only those about one kind / name."""
    return [
        request.data
        for request in server
        if str(request.method.value) == "POST"
        and request.url.path.endswith("/events")
        and isinstance(request.data, dict)
        and (kind is None or request.data.get("involvedObject", {}).get("kind") == kind)
        and (name is None or request.data.get("involvedObject", {}).get("name") == name)
    ]


def declare_agents(server: kmock.KubernetesEmulator) -> None:
    """The Agent resource, the Events kopf posts, and what kopf waits to discover before it is ready
    (it watches CRDs to notice resources appearing later)."""
    server.resources[AGENTS] = server.ResourceInfo(
        kind="Agent",
        singular="agent",
        namespaced=True,
        subresources={"status"},
        verbs={"list", "watch", "patch"},
    )
    server.resources["v1/events"] = server.ResourceInfo(kind="Event", namespaced=True)
    server.resources["v1/namespaces"] = server.ResourceInfo(kind="Namespace", namespaced=False)
    server.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = server.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False
    )


@contextlib.asynccontextmanager
async def running_operator(
    ctx: operator.OperatorContext, server: kmock.KubernetesEmulator, *, liveness: str | None = None
) -> AsyncIterator[None]:
    """Run the operator against `server` until the block ends; enter once kopf is ready."""

    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=str(server.url).rstrip("/"), insecure=True)

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        operator.run(ctx, stop_flag=stop, ready_flag=ready, login_fn=login, server_timeout=5, liveness=liveness)
    )
    await asyncio.wait_for(ready.wait(), timeout=20)
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
