"""The kopf operator: thin registrations that call the same reconcile core as `clawpen controller`.

Kubernetes already gives us the desired state (the Agent custom resources) and change
notifications; kopf turns them into handler calls. Every handler does one thing:
- resume / create / update → Reconciler.reconcile(key), right away;
- a daemon per Agent → reconcile again after the core's requeue hint, backed off while an agent
  stays not ready, or every resync interval (drift repair: a deleted StatefulSet is re-created,
  status refreshed); watches of our Pods and StatefulSets wake it at once when they change, so
  readiness is seen promptly without polling;
- delete → runtime.remove(key), guarded by our own finalizer `clawpen.dev/finalizer` so the
  workload is gone (on a Docker host too, where no garbage collector cascades) before the Agent is;
- Teams get no finalizer (nothing to clean up): Team events, and a short period (a team's status
  follows its agents' phases), wake one loop that re-derives every team's status; a change of a
  team's Ready condition (agents missing or not running, an invalid spec, recovered) is an Event.
Handlers for one key never overlap (a lock per key), so a spec change arriving while the daemon
reconciles waits its turn instead of applying a plan twice.

kopf keeps its bookkeeping in annotations under clawpen.dev (never in status, which our CRD schema
prunes), watches with server and client timeouts so a silently dropped connection is noticed. Its
own log lines become Events only at warning level; the handlers post what happened to an Agent
(created, replaced, SecretMissing, runtime errors...) as Events of their own, so `kubectl describe
agent` shows them, once per change rather than at every resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import kopf

from controller.plan import LABEL_INSTANCE, LABEL_KIND, LABEL_MANAGED, LABEL_NAME, LABEL_NAMESPACE, MANAGED_BY
from controller.reconcile import ReconcileRetry
from controller.resources import API_GROUP, TeamStatus
from controller.runtime.base import Runtime, RuntimeError_
from controller.store.base import StoreError

FINALIZER = f"{API_GROUP}/finalizer"
VERSION = "v1alpha1"
AGENTS = (API_GROUP, VERSION, "agents")
TEAMS = (API_GROUP, VERSION, "teams")

log = logging.getLogger("clawpen.operator")

TeamReport = Callable[[str, str, TeamStatus, "str | None"], None]  # (namespace, name, status, router problem)


class ReconcilerLike(Protocol):
    async def reconcile(self, key: str) -> Any: ...


@dataclass
class OperatorContext:
    """What the handlers need; built once by `clawpen operator` (or a test)."""

    reconciler: ReconcilerLike
    runtime: Runtime
    resync_seconds: float = 30.0
    retry_seconds: float = 5.0
    min_requeue: float = 2.0
    # Re-derives every Team's status (controller.team_sync.sync_team_statuses over the store); it is
    # handed `report_team`, called with each team's status on every pass (Events are posted on change).
    sync_teams: Callable[[TeamReport], Awaitable[Any]] | None = None
    team_period: float = 2.0
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    team_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Consecutive "look again soon" answers per agent: each doubles the next wait (see reconcile).
    waiting: dict[str, int] = field(default_factory=dict)
    # The last (reason, message) posted as an Event per agent (and per "Team:ns/name"), so a steady
    # state posts nothing new.
    posted: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Wakes an agent's daemon early: its Pod or StatefulSet changed (see build_registry).
    wakes: dict[str, asyncio.Event] = field(default_factory=dict)
    # Teams' uids as their watch reports them (an Event names its object's uid; `kubectl describe`
    # selects Events by it), also for Teams whose spec does not parse.
    team_uids: dict[str, str] = field(default_factory=dict)
    # Watch Pods and StatefulSets (Kubernetes runtime); only this installation's, when set.
    watch_workloads: bool = True
    instance: str | None = None
    # A handler's context (kopf keeps its Event queue in context variables), for the team loop.
    post_context: contextvars.Context | None = None

    def lock(self, key: str) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def changed(self, key: str) -> None:
        """A spec change or a watched pod event: look quickly again (reset the backoff)."""
        self.waiting.pop(key, None)

    def wake(self, key: str) -> None:
        """The agent's Pod or StatefulSet changed: its daemon looks now, not after its backoff."""
        self.changed(key)
        self.wakes.setdefault(key, asyncio.Event()).set()

    async def sleep(self, key: str, stopped: Any, delay: float) -> None:
        """Wait `delay` seconds, less when the agent is woken or its daemon stopped."""
        wake = self.wakes.setdefault(key, asyncio.Event())
        if wake.is_set():
            wake.clear()
            return

        async def stopping() -> None:
            await stopped.wait()

        waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        wake.clear()  # events that came while waiting are what this look sees

    async def reconcile(self, key: str, body: Any = None) -> float:
        """Reconcile once; return when to look again (seconds). Failures are retried, not raised.

        With `body` (the Agent as kopf hands it), what happened is posted as a Kubernetes Event:
        actions as Normal, failures (SecretMissing, runtime errors) as Warning.
        """
        async with self.lock(key):
            try:
                result = await self.reconciler.reconcile(key)
            except (ReconcileRetry, RuntimeError_, StoreError, OSError) as err:
                log.warning("reconcile %s: %s (retrying in %.0fs)", key, err, self.retry_seconds)
                self._post(key, body, "Warning", getattr(err, "reason", None) or "ReconcileError", str(err))
                return self.retry_seconds
            except Exception:  # noqa: BLE001 - a bug in one pass must not kill the agent's daemon
                log.exception("reconcile %s failed", key)
                return self.retry_seconds
        self._post_result(key, body, result)
        requeue = getattr(result, "requeue_after", None)
        if not requeue:
            self.waiting.pop(key, None)
            return self.resync_seconds
        # The core asks for quick looks while an agent starts; a pod can sit in Pending or
        # ImagePullBackOff for long, so each further look waits twice as long (never less than
        # min_requeue, never more than a resync): 21 stuck agents polled every 2 s cost ~29 API
        # requests/s. A spec change or a pod event resets it (`changed`).
        streak = self.waiting.get(key, 0)
        self.waiting[key] = streak + 1
        return min(max(self.min_requeue, requeue) * 2 ** min(streak, 16), self.resync_seconds)

    def _post_result(self, key: str, body: Any, result: Any) -> None:
        action = getattr(result, "action", "none")
        if action == "failed":
            reason = getattr(result, "reason", None) or "Failed"
            self._post(key, body, "Warning", reason, getattr(result, "message", None) or f"agent {key} failed")
        elif action in ("created", "replaced", "started", "stopped", "removed"):
            self._post(key, body, "Normal", action.capitalize(), f"{action} the workload of {key}")
        elif action == "none" and self.posted.get(key, ("",))[0] not in ("", "Created", "Replaced", "Started"):
            self.posted.pop(key, None)  # recovered: the same failure later is news again

    def _post(self, key: str, body: Any, kind: str, reason: str, message: str) -> None:
        if body is None or self.posted.get(key) == (reason, message):
            return
        self.posted[key] = (reason, message)
        # kopf.event, not kopf.info/warn: those obey settings.posting.level (WARNING, for kopf's own
        # log lines), which silently dropped every Normal Event (Created, Replaced) we meant to post.
        try:
            try:
                kopf.event(body, type=kind, reason=reason, message=message[:1000])
            except LookupError:
                # Outside a handler (the team loop) kopf's event queue is not in our context: post
                # through the context a handler left us.
                if self.post_context is None:
                    raise
                self.post_context.run(kopf.event, body, type=kind, reason=reason, message=message[:1000])
        except Exception:  # noqa: BLE001 - an Event is a courtesy; never fail a reconcile for it
            log.debug("could not post an event for %s", key, exc_info=True)

    def report_team(self, namespace: str, name: str, status: TeamStatus, router_problem: str | None = None) -> None:
        """A team's derived status: its Ready condition becomes an Event when it changes (Warning
        while the team cannot route everywhere: agents missing or not running, an invalid spec), and
        so does a router that cannot work (RouterMisconfigured: it routes by keywords instead)."""
        key = f"{namespace}/{name}"
        uid = self.team_uids.get(key)
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        if uid is None or ready is None:
            return  # not seen by the watch yet: the next pass posts it
        body = {"apiVersion": f"{API_GROUP}/{VERSION}", "kind": "Team",
                "metadata": {"name": name, "namespace": namespace, "uid": uid}}
        kind = "Normal" if ready.status == "True" else "Warning"
        self._post(f"Team:{key}", body, kind, ready.reason or status.phase, ready.message or status.phase)
        if router_problem:
            self._post(f"TeamRouter:{key}", body, "Warning", "RouterMisconfigured",
                       f"{router_problem}; the team routes by keywords instead")
        elif self.posted.pop(f"TeamRouter:{key}", ("",))[0] == "RouterMisconfigured":  # fixed: say so once
            self._post(f"TeamRouter:{key}", body, "Normal", "RouterConfigured", "the team's router model is configured")

    async def team_loop(self) -> None:
        """Re-derive team statuses on Team events and every team_period seconds."""
        if self.sync_teams is None:
            return
        while True:
            try:
                await self.sync_teams(self.report_team)
            except Exception:  # noqa: BLE001 - one bad pass never stops the loop
                log.exception("team status sync failed")
            self.team_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.team_wake.wait(), timeout=self.team_period)


def configure(settings: kopf.OperatorSettings, *, server_timeout: int = 300) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    # A watch the server ends after server_timeout; the client gives up a little later, so a
    # connection that died without a FIN is noticed instead of hanging forever.
    # An integer: kopf sends it as ?timeoutSeconds=, and the API server refuses "300.0".
    settings.watching.server_timeout = int(server_timeout)
    settings.watching.client_timeout = int(server_timeout) + 30
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True  # one replica (Recreate); no peering CRDs to install
    settings.background.cancellation_polling = 5


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same configuration order as the store and runtime (controller.kube.client)."""
    path = os.environ.get("CLAWPEN_KUBECONFIG")
    if path:
        os.environ["KUBECONFIG"] = path
    result: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
    return result


def build_registry(
    ctx: OperatorContext,
    *,
    login_fn: Callable[..., Any] = login,
    server_timeout: int = 300,
) -> kopf.OperatorRegistry:
    """A fresh registry with our handlers (no global state: tests build their own)."""
    registry = kopf.OperatorRegistry()

    background: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, server_timeout=server_timeout)
        background.append(asyncio.create_task(ctx.team_loop(), name="clawpen-team-status"))

    @kopf.on.cleanup(registry=registry)
    async def _stop_background(**_: Any) -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        background.clear()

    kopf.on.login(registry=registry)(login_fn)

    # Explicit ids: they name kopf's bookkeeping annotations (clawpen.dev/reconcile, ...).
    @kopf.on.resume(*AGENTS, id="reconcile", registry=registry)
    @kopf.on.create(*AGENTS, id="reconcile", registry=registry)
    @kopf.on.update(*AGENTS, id="reconcile", registry=registry)
    async def agent_changed(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> None:
        ctx.changed(f"{namespace}/{name}")
        await ctx.reconcile(f"{namespace}/{name}", body)

    @kopf.daemon(*AGENTS, id="resync", registry=registry, cancellation_timeout=30.0)
    async def agent_resync(
        stopped: kopf.DaemonStopped, namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> None:
        key = f"{namespace}/{name}"
        delay = ctx.resync_seconds
        while not stopped:
            await ctx.sleep(key, stopped, delay)
            if stopped:
                break
            delay = await ctx.reconcile(key, body)

    if ctx.watch_workloads:
        # A not-ready agent's re-checks back off (up to the resync period, the safety net); what
        # makes readiness show promptly is the watch: any change to an agent's Pod or StatefulSet
        # (scheduled, pulled, Ready, crashed, deleted) wakes its daemon at once.
        selector: dict[str, Any] = {LABEL_MANAGED: MANAGED_BY, LABEL_KIND: "Agent"}
        if ctx.instance:
            selector[LABEL_INSTANCE] = ctx.instance

        @kopf.on.event("v1", "pods", labels=selector, id="pod-changed", registry=registry)
        @kopf.on.event("apps", "v1", "statefulsets", labels=selector, id="statefulset-changed", registry=registry)
        async def workload_changed(labels: kopf.Labels, **_: Any) -> None:
            namespace, name = labels.get(LABEL_NAMESPACE), labels.get(LABEL_NAME)
            if namespace and name:
                ctx.wake(f"{namespace}/{name}")

    @kopf.on.delete(*AGENTS, id="remove-workload", registry=registry)
    async def agent_deleted(namespace: str | None, name: str, **_: Any) -> None:
        key = f"{namespace}/{name}"
        async with ctx.lock(key):
            try:
                await ctx.runtime.remove(key)
            except RuntimeError_ as err:
                raise kopf.TemporaryError(
                    f"removing the workload of {key}: {err}", delay=ctx.retry_seconds
                ) from err
        ctx.locks.pop(key, None)
        ctx.waiting.pop(key, None)
        ctx.posted.pop(key, None)
        ctx.wakes.pop(key, None)

    @kopf.on.event(*TEAMS, id="team-changed", registry=registry)
    async def team_event(type: str | None, namespace: str | None, name: str, uid: str | None, **_: Any) -> None:
        key = f"{namespace}/{name}"
        ctx.post_context = ctx.post_context or contextvars.copy_context()
        if type == "DELETED":
            ctx.team_uids.pop(key, None)
            ctx.posted.pop(f"Team:{key}", None)
            ctx.posted.pop(f"TeamRouter:{key}", None)
        elif uid:
            ctx.team_uids[key] = uid
        ctx.team_wake.set()

    return registry


async def run(
    ctx: OperatorContext,
    *,
    namespaces: list[str] | None = None,
    liveness: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    login_fn: Callable[..., Any] = login,
    server_timeout: int = 300,
) -> None:
    """Run until stop_flag is set (or forever): all namespaces unless some are named."""
    registry = build_registry(ctx, login_fn=login_fn, server_timeout=server_timeout)
    await kopf.operator(
        registry=registry,
        clusterwide=not namespaces,
        namespaces=namespaces or (),
        liveness_endpoint=liveness,
        standalone=True,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


async def uninstall(store: Any, runtime: Runtime) -> list[str]:
    """Prepare `kubectl delete -k deploy/kubernetes`: remove every Agent's workload, then our finalizer.

    Run with the operator stopped (scale it to 0). Agents' PersistentVolumeClaims are kept (their
    data outlives an uninstall); delete them with `kubectl delete pvc -A -l clawpen.dev/managed-by=clawpen`.
    """
    from controller.resources import Agent

    for agent in await store.list(Agent, None):
        try:
            await runtime.remove(agent.key)
        except RuntimeError_ as err:
            log.warning("removing the workload of %s: %s (its finalizer is released anyway)", agent.key, err)
    released: list[str] = await store.release_finalizer(Agent, FINALIZER)
    return released
