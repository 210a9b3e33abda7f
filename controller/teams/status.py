"""A Team's status from the Agents it routes to.

Why derived and pure: a team is only as usable as its agents. The controller recomputes this whenever
an Agent or Team changes (level-triggered, like the agent reconciler), and the user sees by name which
agents are missing or not running instead of a chat that silently routes into nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from controller.resources import Agent, Condition, Phase, Team, TeamStatus, now


def _running(agent: Agent) -> bool:
    return agent.status is not None and agent.status.phase == Phase.RUNNING


def derive_team_status(team: Team, agents: Iterable[Agent]) -> TeamStatus:
    """Ready when every intent's agent exists (in the team's namespace) and is Running; else Degraded."""
    namespace = team.metadata.namespace
    by_name = {a.metadata.name: a for a in agents if a.metadata.namespace == namespace}
    wanted = list(dict.fromkeys(entry.agent for entry in team.spec.agents.values()))  # declared order
    missing = [name for name in wanted if name not in by_name]
    not_running = [name for name in wanted if name in by_name and not _running(by_name[name])]
    old = team.status.conditions if team.status else []
    previous = next((c for c in old if c.type == "Ready"), None)
    phase: Literal["Ready", "Degraded"]
    status: Literal["True", "False"]
    if not wanted:
        phase, status, reason, message = "Degraded", "False", "NoAgents", "the team routes to no agents"
    elif missing or not_running:
        parts = []
        if missing:
            parts.append(f"missing agents: {', '.join(missing)}")
        if not_running:
            parts.append(f"agents not running: {', '.join(not_running)}")
        phase, status, reason, message = "Degraded", "False", "AgentsUnavailable", "; ".join(parts)
    else:
        phase, status, reason = "Ready", "True", "AgentsRunning"
        message = f"all {len(wanted)} agents are running"
    # Keep the transition time when nothing changed, so status writes stay idempotent.
    unchanged = previous is not None and previous.status == status and previous.reason == reason
    when = previous.last_transition_time if unchanged and previous else now()
    return TeamStatus(
        phase=phase,
        observed_generation=team.metadata.generation,
        conditions=[Condition(type="Ready", status=status, reason=reason, message=message,
                              last_transition_time=when)],
        missing_agents=missing,
        not_running_agents=not_running,
    )


def invalid_team_status(error: str, previous: TeamStatus | None = None) -> TeamStatus:
    """A Team whose spec does not validate routes nowhere: Failed, with the validation message."""
    old = previous.conditions if previous else []
    before = next((c for c in old if c.type == "Ready"), None)
    unchanged = before is not None and before.status == "False" and before.reason == "InvalidSpec"
    return TeamStatus(
        phase="Failed",
        observed_generation=previous.observed_generation if previous else None,
        conditions=[Condition(type="Ready", status="False", reason="InvalidSpec", message=error[:1000],
                              last_transition_time=before.last_transition_time if unchanged and before else now())],
    )
