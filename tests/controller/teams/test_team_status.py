"""Team status from its agents: Ready only when every routed agent exists and is Running."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.resources import Agent, AgentStatus, ObjectMeta, Phase, Team
from controller.teams.status import derive_team_status
from controller.teams.toml_format import load_team_file

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def finance() -> Team:
    return load_team_file(ROOT / "teams" / "finance-team.toml")


def agent(name: str, phase: Phase | None = Phase.RUNNING, namespace: str = "default") -> Agent:
    status = AgentStatus(phase=phase) if phase else None
    return Agent(metadata=ObjectMeta(name=name, namespace=namespace), status=status)


def test_ready_when_all_agents_run(finance: Team) -> None:
    status = derive_team_status(finance, [agent(n) for n in ("remy", "pax", "rae", "rex", "other")])
    assert status.phase == "Ready" and not status.missing_agents and not status.not_running_agents
    [ready] = status.conditions
    assert (ready.type, ready.status, ready.reason) == ("Ready", "True", "AgentsRunning")


def test_degraded_names_missing_and_stopped_agents(finance: Team) -> None:
    agents = [agent("remy"), agent("pax", Phase.STOPPED), agent("rae", None)]
    status = derive_team_status(finance, agents)
    assert status.phase == "Degraded"
    assert status.missing_agents == ["rex"]
    assert status.not_running_agents == ["pax", "rae"]
    [ready] = status.conditions
    assert ready.status == "False" and ready.reason == "AgentsUnavailable"
    assert ready.message == "missing agents: rex; agents not running: pax, rae"


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.STARTING, Phase.FAILED, Phase.STOPPED])
def test_any_phase_but_running_is_not_running(finance: Team, phase: Phase) -> None:
    agents = [agent("remy", phase), agent("pax"), agent("rae"), agent("rex")]
    assert derive_team_status(finance, agents).not_running_agents == ["remy"]


def test_agents_in_another_namespace_do_not_count(finance: Team) -> None:
    agents = [agent(n, namespace="elsewhere") for n in ("remy", "pax", "rae", "rex")]
    assert derive_team_status(finance, agents).missing_agents == ["remy", "pax", "rae", "rex"]


def test_agent_shared_by_two_intents_is_listed_once(finance: Team) -> None:
    finance.spec.agents["reporter"] = finance.spec.agents["receipts"]
    assert derive_team_status(finance, []).missing_agents == ["remy", "pax", "rae"]


def test_team_without_agents_is_degraded(finance: Team) -> None:
    finance.spec.agents.clear()
    finance.spec.routing.clear()
    status = derive_team_status(finance, [])
    assert status.phase == "Degraded" and status.conditions[0].reason == "NoAgents"


def test_transition_time_is_kept_while_nothing_changes(finance: Team) -> None:
    first = derive_team_status(finance, [])
    finance.status = first
    finance.metadata.generation = 3
    second = derive_team_status(finance, [])
    assert second.conditions[0].last_transition_time == first.conditions[0].last_transition_time
    assert second.observed_generation == 3
