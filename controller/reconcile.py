"""Reconcile one Agent: read spec → translate → observe → act → write status. Level-triggered.

The same function serves the local loop (controller.manager) and the kopf operator, so both
behave identically. Running it twice changes nothing the second time: actions happen only when
what runs differs from the plan (missing, other plan hash, running ≠ wanted), and status is
written only when it changed. Spec errors are terminal (Failed, no retry until the spec changes);
runtime errors are retried by the caller with backoff (ReconcileRetry).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import httpx

from controller.agent_token import TOKEN_NAME, TOKEN_SCOPE, AgentTokens, TokenInfo, token_version
from controller.andor import AndorBridge, with_condition
from controller.catalog import Catalog
from controller.events import Event, EventLog
from controller.resources import Agent, AgentStatus, Condition, Phase, Team, now
from controller.runtime.base import Observed, Runtime, RuntimeError_
from controller.status import Problem, derive_status, status_changed
from controller.store.base import InvalidObject, NotFound, Store
from controller.translate import ResolvedSecret, TranslateError, secret_names_for, translate

log = logging.getLogger("clawpen.reconcile")

Probe = Callable[[str], Awaitable[tuple[bool, str | None]]]


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


async def http_probe(endpoint: str) -> tuple[bool, str | None]:
    """GET <endpoint>/healthz: (healthy, why-not)."""
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            response = await client.get(f"{endpoint}/healthz")
    except httpx.HTTPError as err:
        return False, f"/healthz did not answer ({type(err).__name__})"
    if response.status_code == 200:
        return True, None
    try:
        detail = response.json().get("reason") or response.json().get("error") or response.text
    except ValueError:
        detail = response.text
    return False, f"/healthz answered {response.status_code}: {str(detail)[:300]}"


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
        bridge: AndorBridge | None = None,
        tokens: AgentTokens | None = None,
    ):
        self.store, self.runtime, self.catalog = store, runtime, catalog
        self.instance, self.image = instance, image
        self.secrets: SecretSource = secrets or NoSecrets()
        self.environ = environ if environ is not None else os.environ
        self.probe, self.clock = probe, clock
        self._crashes = _CrashTracker()
        self.events = events
        self.bridge = bridge
        self.tokens = tokens

    async def reconcile(self, key: str) -> ReconcileResult:
        namespace, _, name = key.partition("/")
        try:
            agent = await self.store.get(Agent, name, namespace)
        except NotFound:
            return await self._remove_orphan(key)
        except InvalidObject as err:
            await self._write_broken(name, namespace, err.message)
            return ReconcileResult(action="failed", phase=Phase.FAILED)

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
            )
        except TranslateError as err:
            observed = await self._observe_quietly(key)
            problem = Problem(err.reason, err.message)
            status, retry = await self._registered(
                agent, derive_status(agent, observed, now=self.clock(), problem=problem)
            )
            await self._write(agent, status)
            return ReconcileResult(action="failed", phase=Phase.FAILED, requeue_after=retry)

        try:
            observed = await self.runtime.observe(key)
            action, observed, wait = await self._act(plan, observed, resolved, token)
            self._record_action(key, action, f"{action} the container (plan {plan.hash})")
        except RuntimeError_ as err:
            observed = await self._observe_quietly(key)
            problem = Problem(err.reason, str(err), terminal=False)
            await self._write(agent, derive_status(agent, observed, now=self.clock(), plan_hash=None, problem=problem))
            raise ReconcileRetry(str(err)) from err

        healthy, why = None, None
        if observed.running and observed.endpoint:
            healthy, why = await self.probe(observed.endpoint)
            if healthy:
                self._crashes.healthy(key)
        status = derive_status(
            agent, observed, now=self.clock(), plan_hash=plan.hash, healthy=healthy, health_message=why
        )
        status, retry = await self._registered(agent, status)
        await self._write(agent, status)
        requeue = self._requeue(status, observed, wait)
        if retry is not None:
            requeue = retry if requeue is None else min(requeue, retry)
        return ReconcileResult(action=action, requeue_after=requeue, phase=status.phase)

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
        if self.tokens is not None:
            await self.tokens.forget(key)  # a new agent of the same name gets a new token
        return ReconcileResult(action="removed") if observed.exists else ReconcileResult()

    async def _observe_quietly(self, key: str) -> Observed | None:
        try:
            return await self.runtime.observe(key)
        except RuntimeError_:
            return None

    async def _write(self, agent: Agent, status: AgentStatus) -> None:
        if status_changed(agent.status, status):
            self._record_transition(agent, status)
            await self.store.update_status(Agent, agent.metadata.name, status, agent.metadata.namespace)

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
