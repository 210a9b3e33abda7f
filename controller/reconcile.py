"""Reconcile one Agent: read spec → translate → observe → act → write status. Level-triggered.

The same function serves the local loop (controller.manager) and the kopf operator, so both
behave identically. Running it twice changes nothing the second time: actions happen only when
what runs differs from the plan (missing, other plan hash, running ≠ wanted), and status is
written only when it changed. Spec errors are terminal (Failed, no retry until the spec changes);
runtime errors are retried by the caller with backoff (ReconcileRetry).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

import httpx

from controller.agent_token import TOKEN_NAME, TOKEN_SCOPE, AgentTokens, TokenInfo, token_version
from controller.andor import AndorBridge, with_condition
from controller.catalog import Catalog
from controller.events import Event, EventLog
from controller.idle import Activity, Suspendable, idle_since, parse_duration
from controller.interpolate import VarPolicy
from controller.plan import WorkloadPlan
from controller.programs import program_named
from controller.resources import Agent, AgentStatus, Condition, DesiredState, Phase, Team, now
from controller.runtime.base import Observed, Runtime, RuntimeError_
from controller.status import Problem, derive_status, status_changed
from controller.store.base import InvalidObject, NotFound, Store
from controller.translate import ResolvedSecret, TranslateError, secret_names_for, translate
from controller.volume_policy import VolumePolicy

log = logging.getLogger("clawpen.reconcile")

class Health(NamedTuple):
    """What an agent's /healthz said: ready or why not, and which of its tools failed (if any)."""

    healthy: bool
    message: str | None = None
    tools_degraded: str | None = None


Probe = Callable[[str, str, float], Awaitable[Health]]


class SecretSource(Protocol):
    def resolve(self, agent: str, names: Iterable[str]) -> Mapping[str, ResolvedSecret]: ...

    def read(self, info: ResolvedSecret) -> bytes: ...


class NoSecrets:
    """Used until a secret store is configured: every secret is missing."""

    def resolve(self, agent: str, names: Iterable[str]) -> Mapping[str, ResolvedSecret]:
        return {}

    def read(self, info: ResolvedSecret) -> bytes:  # pragma: no cover - nothing resolves
        raise KeyError("no secret store")


class ReconcileRetry(Exception):
    """A transient failure (runtime unreachable, image missing): retry with backoff."""


@dataclass(frozen=True)
class ReconcileResult:
    action: str = "none"  # created | replaced | started | stopped | removed | failed | none
    requeue_after: float | None = None
    phase: str | None = None
    reason: str | None = None  # why it failed (SecretMissing, InvalidSpec...), for Events
    message: str | None = None


READY_REPROBE_SECONDS = 300.0  # a Ready agent whose container did not change is re-probed this rarely
_probe_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _probe_client() -> httpx.AsyncClient:
    """One client per event loop: building an httpx client (its TLS context) costs more than a probe."""
    loop = asyncio.get_running_loop()
    client = _probe_clients.get(loop)
    if client is None:
        client = _probe_clients[loop] = httpx.AsyncClient(timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0))
    return client


def settled_fingerprint(resource_version: str | None, observed: Observed | None) -> tuple[object, ...]:
    """What a periodic resync compares: the object's resourceVersion (any spec or status change moves
    it) and what the runtime shows of its container (a died, restarted or replaced one differs)."""
    if observed is None or not observed.exists:
        return (resource_version, None)
    return (resource_version, observed.container_id, observed.state, observed.started_at, observed.plan_hash)


async def http_probe(endpoint: str, path: str = "/healthz", timeout: float = 1.0) -> Health:
    """GET <endpoint><path> (the program's readiness path): healthy, why-not, and `tools_degraded`."""
    try:
        response = await _probe_client().get(f"{endpoint}{path}", timeout=timeout)
    except httpx.HTTPError as err:
        return Health(False, f"{path} did not answer ({type(err).__name__})")
    if response.status_code == 200:
        try:
            body = response.json()
            degraded = body.get("tools_degraded") if isinstance(body, dict) else None
        except ValueError:
            degraded = None
        return Health(True, None, str(degraded)[:1000] if degraded else None)
    try:
        detail = response.json().get("reason") or response.json().get("error") or response.text
    except ValueError:
        detail = response.text
    return Health(False, f"{path} answered {response.status_code}: {str(detail)[:300]}")


def _degraded(status: AgentStatus | None) -> str | None:
    """The ToolsDegraded message the last probe reported (kept while the probe is skipped)."""
    condition = status.condition("ToolsDegraded") if status else None
    return condition.message if condition is not None and condition.status == "True" else None


@dataclass
class _CrashTracker:
    """Spaces out restarts of a crashing container (Docker's own restart policy is not enough when
    the controller is what restarts it: die events would otherwise trigger an immediate restart)."""

    starts: dict[str, tuple[int, float]] = field(default_factory=dict)

    def wait(self, key: str) -> float:
        count, last = self.starts.get(key, (0, 0.0))
        delay = min(0.5 * (2**count), 60.0) if count else 0.0
        return max(0.0, last + delay - time.monotonic())

    def started(self, key: str) -> None:
        count, _ = self.starts.get(key, (0, 0.0))
        self.starts[key] = (count + 1, time.monotonic())

    def healthy(self, key: str) -> None:
        self.starts.pop(key, None)


class Reconciler:
    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        catalog: Catalog,
        *,
        instance: str,
        image: str,
        secrets: SecretSource | None = None,
        environ: Mapping[str, str] | None = None,
        probe: Probe = http_probe,
        clock: Callable[[], datetime] = now,
        events: EventLog | None = None,
        runtime_readiness: bool = False,
        bridge: AndorBridge | None = None,
        tokens: AgentTokens | None = None,
        variables: VarPolicy | None = None,
        volumes: VolumePolicy | None = None,
        isolation: str = "default",
        activity: Activity | None = None,
    ):
        self.store, self.runtime, self.catalog = store, runtime, catalog
        # True: trust the runtime's own readiness (a Pod's Ready condition, fed by its readinessProbe on
        # /healthz) instead of probing the endpoint ourselves — an operator outside the cluster cannot
        # resolve *.svc.cluster.local, so every agent looked NotReady for ever.
        self.runtime_readiness = runtime_readiness
        self.instance, self.image = instance, image
        self.secrets: SecretSource = secrets or NoSecrets()
        self.environ = environ if environ is not None else os.environ
        self.probe, self.clock = probe, clock
        self._crashes = _CrashTracker()
        self._probe_misses: dict[str, int] = {}
        self.events = events
        self.bridge = bridge
        self.tokens = tokens
        self.variables, self.volumes, self.isolation = variables, volumes, isolation
        self.activity = activity
        # key → (container id, started_at, monotonic time) of the last good probe: see _still_ready
        self._probed: dict[str, tuple[str | None, datetime | None, float]] = {}
        # key -> settled_fingerprint() as this reconcile left it: a periodic resync skips an agent
        # whose object and container are still exactly that (manager.Controller.resync).
        self.settled: dict[str, tuple[object, ...]] = {}

    async def reconcile(self, key: str) -> ReconcileResult:
        namespace, _, name = key.partition("/")
        self.settled.pop(key, None)  # only a reconcile that ends well says it again
        try:
            agent = await self.store.get(Agent, name, namespace)
        except NotFound:
            return await self._remove_orphan(key)
        except InvalidObject as err:
            await self._write_broken(name, namespace, err.message)
            return ReconcileResult(action="failed", phase=Phase.FAILED, reason="InvalidSpec", message=err.message)

        try:
            token = await self.tokens.ensure(key) if self.tokens is not None else None
        except OSError as err:
            raise ReconcileRetry(f"cannot store the agent's token: {err}") from err
        try:
            resolved = self.secrets.resolve(name, secret_names_for(agent, self.catalog))
            plan = translate(
                agent,
                self.catalog,
                resolved,
                instance=self.instance,
                image=self.image,
                environ=self.environ,
                agent_token=TokenInfo(TOKEN_SCOPE, token_version(token)) if token else None,
                variables=self.variables,
                volumes=self.volumes,
                isolation=self.isolation,
            )
        except TranslateError as err:
            observed = await self._observe_quietly(key)
            problem = Problem(err.reason, err.message)
            status, retry = await self._registered(
                agent, derive_status(agent, observed, now=self.clock(), problem=problem)
            )
            await self._write(agent, status)
            return ReconcileResult(
                action="failed", phase=Phase.FAILED, requeue_after=retry, reason=err.reason, message=err.message
            )

        try:
            observed = await self.runtime.observe(key)
            observed = await self._thaw_unless_idle(agent, observed, plan.hash)
            action, observed, wait = await self._act(plan, observed, resolved, token)
            self._record_action(key, action, f"{action} the container (plan {plan.hash})")
            observed, idle_wait = await self._suspend_if_idle(agent, observed)
        except RuntimeError_ as err:
            observed = await self._observe_quietly(key)
            problem = Problem(err.reason, str(err), terminal=err.terminal)
            await self._write(agent, derive_status(agent, observed, now=self.clock(), plan_hash=None, problem=problem))
            raise ReconcileRetry(str(err)) from err

        healthy, why, degraded = None, None, None
        if observed.running and self.runtime_readiness and observed.healthy is not None:
            healthy = observed.healthy
            why = None if healthy else "the pod is not Ready (its readinessProbe on /healthz fails)"
            if healthy:
                self._crashes.healthy(key)
        elif observed.running and observed.endpoint and observed.state != "paused":
            slow = plan.start_timeout_s > 60
            if self._still_ready(agent, observed):
                healthy, why, degraded = True, None, _degraded(agent.status)
            else:
                healthy, why, degraded = await self.probe(observed.endpoint, plan.readiness_path, 5.0 if slow else 1.0)
                self._probed.pop(key, None)
            if healthy:
                self._crashes.healthy(key)
                self._probe_misses.pop(key, None)
                self._probed.setdefault(key, (observed.container_id, observed.started_at, time.monotonic()))
            elif slow and self._was_ready(agent, observed):
                # A busy slow program (OpenClaw mid-turn on a loaded host) can miss a probe; like a
                # Kubernetes failureThreshold, three misses in a row make a Ready agent NotReady.
                misses = self._probe_misses[key] = self._probe_misses.get(key, 0) + 1
                healthy = misses < 3
            else:
                why = self._starting_message(plan, observed, why)
        status = derive_status(
            agent,
            observed,
            now=self.clock(),
            plan_hash=plan.hash,
            healthy=healthy,
            health_message=why,
            tools_degraded=degraded,
        )
        status, retry = await self._registered(agent, status)
        written = await self._write(agent, status)
        if observed.exists:
            self.settled[key] = settled_fingerprint(written, observed)
        requeue = self._requeue(status, observed, wait)
        if requeue == 0.5 and plan.start_timeout_s > 60:
            requeue = 2.0  # a slow starter: look every 2 s, not twice a second, while it boots
        if retry is not None:
            requeue = retry if requeue is None else min(requeue, retry)
        if requeue is None and healthy:  # the slow re-probe (jittered so a fleet does not probe at once)
            requeue = READY_REPROBE_SECONDS * random.uniform(1.0, 1.2)
        if idle_wait is not None:
            requeue = idle_wait if requeue is None else min(requeue, idle_wait)
        return ReconcileResult(action=action, requeue_after=requeue, phase=status.phase)
    @staticmethod
    def _was_ready(agent: Agent, observed: Observed) -> bool:
        """Ready in the last status, for this same container (a restart starts over)."""
        status = agent.status
        ready = status.condition("Ready") if status else None
        return bool(ready and ready.status == "True" and status and status.container_id == observed.container_id)

    def _starting_message(self, plan: WorkloadPlan, observed: Observed, why: str | None) -> str | None:
        """For a slow starter, say what it waits for and for how long (a boot is not a failure)."""
        if plan.start_timeout_s <= 60 or observed.started_at is None:
            return why
        elapsed = int(max(0.0, (self.clock() - observed.started_at).total_seconds()))
        waiting = program_named(plan.program).starting_message
        if elapsed <= plan.start_timeout_s:
            return f"{waiting} ({elapsed} s; waits for {plan.readiness_path})"
        return (
            f"{waiting}: no answer on {plan.readiness_path} after {elapsed} s (expected within "
            f"{plan.start_timeout_s} s); see `clawpen logs {plan.name}`" + (f"; last: {why}" if why else "")
        )

    async def _registered(self, agent: Agent, status: AgentStatus) -> tuple[AgentStatus, float | None]:
        """Add the AndOR bridge's Registered condition (when a bridge is configured); never raises."""
        if self.bridge is None:
            return status, None
        try:
            teams = await self.store.list(Team, agent.metadata.namespace)
        except Exception:  # noqa: BLE001 - triggers are optional; registration must not fail the agent
            teams = []
        condition, retry = await self.bridge.ensure(agent, teams, self.clock())
        previous = agent.status.condition(condition.type) if agent.status else None
        conditions = with_condition(list(status.conditions), condition, previous)
        return status.model_copy(update={"conditions": conditions}), retry

    def stale_registrations(self, wanted: Iterable[str]) -> list[str]:
        """Keys registered with the bridge that no agent wants: resync reconciles them to unregister."""
        return self.bridge.stale_keys(wanted) if self.bridge is not None else []

    def _still_ready(self, agent: Agent, observed: Observed) -> bool:
        """Skip the probe of an agent that is Ready on the same container (same id, same start) and was
        probed less than READY_REPROBE_SECONDS ago. A controller restart trusts the stored status the
        same way (adoption without probing 200 agents at once, and without flapping on a slow probe);
        any Docker event (die, start, oom) changes what is observed and forces a probe."""
        status = agent.status
        ready = status.condition("Ready") if status else None
        if status is None or ready is None or ready.status != "True" or status.phase != Phase.RUNNING:
            return False
        same = (observed.container_id, observed.started_at)
        if (status.container_id, status.started_at) != same:
            return False
        seen = self._probed.get(agent.key)
        if seen is None:  # adopted after a restart: count the stored Ready as a probe made now
            self._probed[agent.key] = (*same, time.monotonic())
            return True
        return (seen[0], seen[1]) == same and time.monotonic() - seen[2] < READY_REPROBE_SECONDS

    async def _thaw_unless_idle(self, agent: Agent, observed: Observed, plan_hash: str) -> Observed:
        """A paused container that should not stay paused (idle off, stop asked, spec changed): unpause
        it first, so stop/replace never meet a frozen process."""
        if observed.state != "paused" or not isinstance(self.runtime, Suspendable):
            return observed
        needs_thaw = agent.spec.state != DesiredState.RUNNING or observed.plan_hash != plan_hash
        suspended_by_us = agent.status is not None and agent.status.phase == Phase.SUSPENDED
        if not needs_thaw and (agent.spec.idle is not None or not suspended_by_us):
            return observed  # still meant to be suspended, or paused by someone else (a snapshot in progress)
        await self.runtime.unpause(agent.key)
        self._record_action(agent.key, "woken", "unpaused: spec changed")
        return await self.runtime.observe(agent.key)

    async def _suspend_if_idle(self, agent: Agent, observed: Observed) -> tuple[Observed, float | None]:
        """spec.idle: pause after suspendAfter without chat; unpause when activity moved. Returns the
        new observation and when to look again (None: an event or a chat message will tell us)."""
        runtime, key, idle = self.runtime, agent.key, agent.spec.idle
        if (
            idle is None
            or self.activity is None
            or not isinstance(runtime, Suspendable)
            or not observed.running
            or agent.spec.state != DesiredState.RUNNING
        ):
            return observed, None
        after = parse_duration(idle.suspend_after)
        seen = self.activity.last(key)
        ready = agent.status.condition("Ready") if agent.status else None
        ready_since = ready.last_transition_time if ready is not None and ready.status == "True" else None
        now_ = self.clock()
        since = idle_since(seen, observed.started_at, ready_since) or now_
        remaining = (since + after - now_).total_seconds()
        if observed.state == "paused":
            if remaining <= 0:
                return observed, None
            log.info("waking %s: chat activity", key)
            await runtime.unpause(key)
            self._record_action(key, "woken", "unpaused: chat activity")
            return await runtime.observe(key), remaining
        if remaining > 0:
            return observed, max(remaining, 0.05)
        if ready_since is None:  # only a Ready agent is suspended (never one that is still booting)
            return observed, None
        log.info("suspending %s: no chat for %s", key, idle.suspend_after)
        await runtime.pause(key)
        if self.activity.last(key) != seen:  # a message arrived while we paused: see controller.idle
            await runtime.unpause(key)
            return await runtime.observe(key), after.total_seconds()
        self._record_action(key, "suspended", f"paused after {idle.suspend_after} without chat")
        return await runtime.observe(key), None

    async def _act(
        self, plan, observed: Observed, resolved: Mapping[str, ResolvedSecret], token: str | None
    ) -> tuple[str, Observed, float]:
        key = plan.key
        if not observed.exists or observed.plan_hash != plan.hash:
            values = {
                m.name: token.encode() if m.name == TOKEN_NAME and token else self.secrets.read(resolved[m.name])
                for m in plan.secrets
            }
            action = "created" if not observed.exists else "replaced"
            log.info("%s %s (plan %s)", action, key, plan.hash)
            if plan.running:
                self._crashes.started(key)
            return action, await self.runtime.apply(plan, values), 0.0
        if plan.running and not observed.running and observed.state != "restarting":
            crashed = observed.exit_code not in (None, 0) or observed.oom_killed
            if crashed and plan.restart_policy == "no":
                return "none", observed, 0.0  # the user asked not to be restarted after a crash
            wait = self._crashes.wait(key)
            if wait > 0:
                return "none", observed, wait
            log.info("starting %s (was %s)", key, observed.state)
            self._crashes.started(key)
            await self.runtime.start(key)
            return "started", await self.runtime.observe(key), 0.0
        if not plan.running and observed.running:
            log.info("stopping %s", key)
            await self.runtime.stop(key)
            return "stopped", await self.runtime.observe(key), 0.0
        return "none", observed, 0.0

    def _requeue(self, status: AgentStatus, observed: Observed, wait: float) -> float | None:
        if wait > 0:
            return wait
        if status.phase in (Phase.STARTING, Phase.PENDING):
            return 0.5
        ready = status.condition("Ready")
        if status.phase == Phase.RUNNING and (ready is None or ready.status != "True"):
            return 2.0
        return None

    async def _remove_orphan(self, key: str) -> ReconcileResult:
        if self.bridge is not None:
            namespace, _, name = key.partition("/")
            retry = await self.bridge.forget(namespace, name)
            if retry is not None:
                result = await self._remove_workload(key)
                return ReconcileResult(action=result.action, requeue_after=retry)
        return await self._remove_workload(key)

    async def _remove_workload(self, key: str) -> ReconcileResult:
        observed = await self.runtime.observe(key)
        if observed.exists:
            log.info("removing %s: no Agent wants it", key)
            await self.runtime.remove(key)
            if self.events is not None:
                self.events.forget(key)
        self._probed.pop(key, None)
        if self.activity is not None:
            self.activity.forget(key)
        if self.tokens is not None:
            await self.tokens.forget(key)  # a new agent of the same name gets a new token
        return ReconcileResult(action="removed") if observed.exists else ReconcileResult()

    async def _observe_quietly(self, key: str) -> Observed | None:
        try:
            return await self.runtime.observe(key)
        except RuntimeError_:
            return None

    async def _write(self, agent: Agent, status: AgentStatus) -> str | None:
        """Write the status if it changed; the object's resourceVersion afterwards."""
        if not status_changed(agent.status, status):
            return agent.metadata.resource_version
        self._record_transition(agent, status)
        written = await self.store.update_status(Agent, agent.metadata.name, status, agent.metadata.namespace)
        return written.metadata.resource_version

    def _record_transition(self, agent: Agent, status: AgentStatus) -> None:
        if self.events is None:
            return
        old, new = agent.status, status.condition("Ready")
        old_ready = old.condition("Ready") if old else None
        if new is None or (old and old.phase == status.phase and old_ready and old_ready.reason == new.reason):
            return
        kind = "Normal" if status.phase in (Phase.RUNNING, Phase.STOPPED, Phase.STARTING, Phase.PENDING) else "Warning"
        text = f"{status.phase}: {new.message}" if new.message else str(status.phase)
        self.events.record(agent.key, Event(self.clock().isoformat(), kind, new.reason, text))

    def _record_action(self, key: str, action: str, detail: str) -> None:
        if self.events is not None and action != "none":
            self.events.record(key, Event(self.clock().isoformat(), "Normal", action.capitalize(), detail))

    async def _write_broken(self, name: str, namespace: str, message: str) -> None:
        """A spec that cannot be read: say so on its status; leave whatever runs alone (lose nothing)."""
        ready = Condition(
            type="Ready", status="False", reason="InvalidSpec", message=message, last_transition_time=self.clock()
        )
        status = AgentStatus(phase=Phase.FAILED, message=message, conditions=[ready])
        try:
            current = await self._current_status(name, namespace)
            if current is not None and current.message == message and current.phase == Phase.FAILED:
                return
            await self.store.update_status(Agent, name, status, namespace)
        except NotFound:
            pass

    async def _current_status(self, name: str, namespace: str) -> AgentStatus | None:
        reader = getattr(self.store, "get_status", None)
        if reader is None:
            return None
        result: AgentStatus | None = await reader(Agent, name, namespace)
        return result
