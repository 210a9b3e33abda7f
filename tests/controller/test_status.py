"""derive_status(): phase, Ready condition and its reason for each situation a user can meet."""

from datetime import UTC, datetime, timedelta

import pytest

from controller.resources import API_VERSION, AgentStatus, Phase, parse_resource
from controller.runtime.base import Observed
from controller.status import Problem, derive_status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def agent(state="Running", status=None, generation=3):
    doc = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "finn", "generation": generation},
           "spec": {"state": state}}
    a = parse_resource(doc)
    a.status = status
    return a


RUNNING = Observed(key="default/finn", exists=True, running=True, state="running", endpoint="http://127.0.0.1:5000",
                   started_at=T0, container_id="abc")


@pytest.mark.parametrize(
    ("state", "observed", "kwargs", "phase", "ready", "reason"),
    [
        ("Running", None, {}, Phase.PENDING, "False", "Creating"),
        ("Running", RUNNING, {"healthy": True}, Phase.RUNNING, "True", "Ready"),
        ("Running", RUNNING, {"healthy": None}, Phase.STARTING, "False", "Starting"),
        ("Running", RUNNING, {"healthy": False, "health_message": "no key"}, Phase.STARTING, "False", "NotReady"),
        ("Running", Observed("default/finn", True, state="exited", exit_code=3), {}, Phase.FAILED, "False", "Crashed"),
        ("Running", Observed("default/finn", True, state="exited", exit_code=137, oom_killed=True), {},
         Phase.FAILED, "False", "OOMKilled"),
        ("Running", Observed("default/finn", True, state="restarting"), {}, Phase.STARTING, "False", "Restarting"),
        ("Stopped", Observed("default/finn", True, state="exited", exit_code=0), {}, Phase.STOPPED, "False", "Stopped"),
        ("Stopped", None, {}, Phase.STOPPED, "False", "Stopped"),
        ("Running", None, {"problem": Problem("InvalidSpec", "spec.x: bad")}, Phase.FAILED, "False", "InvalidSpec"),
        ("Running", None, {"problem": Problem("ImageMissing", "build it", terminal=False)}, Phase.PENDING, "False",
         "ImageMissing"),
    ],
)
def test_phases(state, observed, kwargs, phase, ready, reason):
    status = derive_status(agent(state), observed, now=T0, **kwargs)
    assert status.phase == phase
    cond = status.condition("Ready")
    assert (cond.status, cond.reason) == (ready, reason)
    assert status.observed_generation == 3
    assert cond.message  # always something a person can read


def test_endpoint_only_while_running():
    assert derive_status(agent(), RUNNING, now=T0, healthy=True).endpoint == "http://127.0.0.1:5000"
    stopped = Observed("default/finn", True, state="exited", exit_code=0, endpoint=None)
    assert derive_status(agent("Stopped"), stopped, now=T0).endpoint is None


def test_transition_time_moves_only_on_change():
    first = derive_status(agent(), RUNNING, now=T0, healthy=True)
    later = derive_status(agent(status=first), RUNNING, now=T0 + timedelta(minutes=5), healthy=True)
    assert later.condition("Ready").last_transition_time == T0
    assert later == first  # nothing to write
    broken = derive_status(agent(status=later), None, now=T0 + timedelta(minutes=9))
    assert broken.condition("Ready").last_transition_time == T0 + timedelta(minutes=9)


def test_status_model_survives_round_trip():
    status = derive_status(agent(), RUNNING, now=T0, healthy=True)
    assert AgentStatus.model_validate(status.dump()) == status


# ---- ToolsDegraded (the agent's /healthz reports failed MCP servers) ----------------------------------
def test_tools_degraded_condition_appears_and_recovers() -> None:
    from controller.resources import Agent
    from controller.runtime.base import Observed
    from controller.status import derive_status

    agent = Agent.model_validate({"apiVersion": "clawpen.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "t"}})
    running = Observed(key=agent.key, exists=True, running=True, endpoint="http://127.0.0.1:1", state="running")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    plain = derive_status(agent, running, now=t0, healthy=True)
    assert plain.condition("ToolsDegraded") is None  # never failed: not shown at all
    bad = derive_status(agent, running, now=t0, healthy=True, tools_degraded="time: ConnectError: refused")
    cond = bad.condition("ToolsDegraded")
    assert cond and cond.status == "True" and cond.reason == "MCPServerFailed"
    assert cond.message == "time: ConnectError: refused"
    assert bad.phase == "Running" and bad.condition("Ready").status == "True"  # the agent keeps working
    agent.status = bad
    fixed = derive_status(agent, running, now=t0, healthy=True)
    cond = fixed.condition("ToolsDegraded")
    assert cond and cond.status == "False" and cond.reason == "ToolsAvailable"
