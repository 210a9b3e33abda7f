"""derive_status(): what the user sees, computed from the spec and what the runtime reports. Pure.

Phases follow the Kubernetes habit: one Ready condition carries the reason (a CamelCase word a
script can match) and a message a person can act on. lastTransitionTime moves only when the
condition's status actually changes, so rewriting an unchanged status is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from controller.resources import Agent, AgentStatus, Condition, DesiredState, Phase
from controller.runtime.base import Observed

CRASH_LOOP_RESTARTS = 3  # restarts without becoming healthy before it is a crash loop, not a slow start


@dataclass(frozen=True)
class Problem:
    """Why the controller could not make the spec true (translate or runtime failure)."""

    reason: str
    message: str
    terminal: bool = True  # terminal: waits for a spec change; otherwise retried with backoff


def derive_status(
    agent: Agent,
    observed: Observed | None,
    *,
    now: datetime,
    plan_hash: str | None = None,
    problem: Problem | None = None,
    healthy: bool | None = None,
    health_message: str | None = None,
    tools_degraded: str | None = None,
) -> AgentStatus:
    previous = agent.status or AgentStatus()
    want_running = agent.spec.state == DesiredState.RUNNING
    obs = observed or Observed(key=agent.key, exists=False)

    phase, ready, reason, message = _phase(want_running, obs, problem, healthy, health_message)
    conditions = [_condition(previous, "Ready", ready, reason, message, now)]
    tools = _tools_condition(previous, ready, tools_degraded, now)
    if tools is not None:
        conditions.append(tools)
    return AgentStatus(
        phase=phase,
        observed_generation=agent.metadata.generation,
        conditions=conditions,
        endpoint=obs.endpoint if obs.running else None,
        started_at=obs.started_at if obs.running else None,
        restart_count=obs.restart_count,
        plan_hash=plan_hash,
        container_id=obs.container_id,
        message=message if not ready else None,
    )


def _phase(
    want_running: bool,
    obs: Observed,
    problem: Problem | None,
    healthy: bool | None,
    health_message: str | None,
) -> tuple[Phase, bool, str, str]:
    if problem is not None:
        return Phase.FAILED if problem.terminal else Phase.PENDING, False, problem.reason, problem.message
    if not want_running:
        if obs.running:
            return Phase.RUNNING, False, "Stopping", "stop requested; the container is still running"
        return Phase.STOPPED, False, "Stopped", "spec.state is Stopped"
    if not obs.exists:
        return Phase.PENDING, False, "Creating", "the container is being created"
    if not obs.running and obs.error:
        # Docker's own words (e.g. "OCI runtime create failed: ...") instead of "the container is created".
        return Phase.FAILED, False, "StartError", f"Docker could not start the container: {obs.error}"
    looping = obs.restart_count >= CRASH_LOOP_RESTARTS and not healthy
    if obs.oom_killed and (not obs.running or looping):
        return Phase.FAILED, False, "OOMKilled", (
            f"the container ran out of memory (OOMKilled; restarts: {obs.restart_count}, last exit code "
            f"{obs.exit_code if obs.exit_code is not None else 137}); raise spec.resources.memoryMB"
        )
    if looping and (obs.state == "restarting" or obs.exit_code not in (None, 0) or obs.running):
        return Phase.FAILED, False, "CrashLoop", (
            f"the container keeps exiting (restarts: {obs.restart_count}; last exit: {_last_exit(obs)})"
        )
    if obs.running and obs.state == "paused":
        return Phase.SUSPENDED, False, "Suspended", "no chat for spec.idle.suspendAfter; the next chat message wakes it"
    if obs.running:
        if healthy:
            return Phase.RUNNING, True, "Ready", "the agent answers on its endpoint"
        if obs.error and obs.state[:1].isupper():  # a runtime's own reason: Unschedulable, ImagePullBackOff...
            return Phase.PENDING, False, obs.state, obs.error
        why = health_message or "waiting for the agent's /healthz"
        return Phase.STARTING, False, "Starting" if healthy is None else "NotReady", why
    if obs.state == "restarting":
        return Phase.STARTING, False, "Restarting", f"the container is restarting (restarts: {obs.restart_count})"
    if obs.exit_code not in (None, 0):
        detail = f": {obs.error}" if obs.error else ""
        return Phase.FAILED, False, "Crashed", f"the container exited with code {obs.exit_code}{detail}"
    return Phase.STARTING, False, "Starting", f"the container is {obs.state}"


def _last_exit(obs: Observed) -> str:
    if obs.exit_code is None:
        return "unknown (it is starting again)"
    return f"code {obs.exit_code}" + (f": {obs.error}" if obs.error else "")


def _tools_condition(previous: AgentStatus, ready: bool, degraded: str | None, now: datetime) -> Condition | None:
    """ToolsDegraded: True while the ready agent reports failed tool servers (MCP), with its reason.

    Shown once it has been True, then kept as False so the recovery is visible; an agent whose tools
    never failed does not carry it. While the agent is not ready, the last known value stays."""
    before = previous.condition("ToolsDegraded")
    if not ready:
        return before
    if degraded:
        return _condition(previous, "ToolsDegraded", True, "MCPServerFailed", degraded, now)
    if before is not None:
        return _condition(previous, "ToolsDegraded", False, "ToolsAvailable", "every tool server answers", now)
    return None


def _condition(
    previous: AgentStatus, type_: str, ok: bool, reason: str, message: str, now: datetime
) -> Condition:
    status: Literal["True", "False"] = "True" if ok else "False"
    before = previous.condition(type_)
    since = before.last_transition_time if before and before.status == status else now
    return Condition(type=type_, status=status, reason=reason, message=message, last_transition_time=since)


def status_changed(old: AgentStatus | None, new: AgentStatus) -> bool:
    return old is None or old.model_dump() != new.model_dump()
