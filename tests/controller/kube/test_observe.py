"""controller.kube.observe: pod shapes as the API server reports them → the Observed the core expects."""

from __future__ import annotations

from typing import Any

from controller.kube.observe import observed_from
from controller.plan import LABEL_INSTANCE, LABEL_PLAN_HASH

KEY = "default/finn"
ENDPOINT = "http://agent-finn.default.svc.cluster.local:8080"


def sts(replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"labels": {LABEL_PLAN_HASH: "abc", LABEL_INSTANCE: "i1"}},
        "spec": {"replicas": replicas},
    }


def pod(state: dict[str, Any], phase: str = "Running", ready: bool = False, **extra: Any) -> dict[str, Any]:
    status = {"name": "agent", "state": state, "restartCount": extra.pop("restarts", 0), **extra}
    return {
        "metadata": {"name": "agent-finn-0"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [status],
        },
    }


def test_absent_statefulset_is_not_there() -> None:
    assert not observed_from(KEY, None, None, ENDPOINT).exists


def test_scaled_to_zero_is_stopped_even_while_the_pod_terminates() -> None:
    stopped = observed_from(KEY, sts(0), None, ENDPOINT)
    assert (stopped.exists, stopped.running, stopped.state) == (True, False, "stopped")
    assert stopped.plan_hash == "abc" and stopped.instance == "i1" and stopped.endpoint == ENDPOINT
    terminating = observed_from(KEY, sts(0), pod({"running": {}}, ready=True), ENDPOINT)
    assert (terminating.running, terminating.state) == (False, "stopped")


def test_scaled_up_without_a_pod_yet_is_started_but_not_ready() -> None:
    seen = observed_from(KEY, sts(1), None, ENDPOINT)
    assert (seen.running, seen.state, seen.healthy) == (True, "pending", None)


def test_running_and_ready() -> None:
    seen = observed_from(
        KEY,
        sts(),
        pod({"running": {"startedAt": "2026-11-24T05:00:00Z"}}, ready=True, containerID="containerd://x"),
        ENDPOINT,
    )
    assert seen.running and seen.healthy and seen.container_id == "containerd://x"
    assert seen.started_at is not None and seen.started_at.tzinfo is not None


def test_image_pull_backoff_is_a_waiting_state_with_its_message() -> None:
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image clawpen/agent:x"}}
    seen = observed_from(KEY, sts(), pod(waiting, phase="Pending"), ENDPOINT)
    assert (seen.running, seen.state, seen.healthy) == (True, "ImagePullBackOff", False)
    assert seen.error is not None and "pulling image" in seen.error


def test_crash_loop_is_restarting_with_the_last_exit() -> None:
    last = {"terminated": {"exitCode": 3, "reason": "Error", "message": "bad config"}}
    seen = observed_from(
        KEY, sts(), pod({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=4, lastState=last), ENDPOINT
    )
    assert (seen.state, seen.exit_code, seen.restart_count, seen.oom_killed) == ("restarting", 3, 4, False)
    assert seen.error == "bad config"


def test_oom_kill_is_reported() -> None:
    ended = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    seen = observed_from(KEY, sts(), pod(ended, phase="Failed"), ENDPOINT)
    assert (seen.running, seen.state, seen.oom_killed, seen.exit_code) == (False, "exited", True, 137)


def test_pending_pod_without_container_status() -> None:
    bare = {"metadata": {"name": "agent-finn-0"}, "status": {"phase": "Pending"}}
    seen = observed_from(KEY, sts(), bare, ENDPOINT)
    assert (seen.exists, seen.running, seen.state, seen.healthy) == (True, True, "pending", None)


def test_unschedulable_pending_pod_surfaces_its_reason_in_the_status() -> None:
    """A PVC without a storage class (or no node that fits) leaves the pod Pending: the Agent's status says why."""
    from datetime import UTC, datetime

    from controller.resources import API_VERSION, Agent, parse_resource
    from controller.status import derive_status

    message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes"
    pending = {
        "metadata": {"name": "agent-finn-0"},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}],
        },
    }
    seen = observed_from(KEY, sts(), pending, ENDPOINT)
    assert (seen.running, seen.state) == (True, "Unschedulable")
    assert seen.error is not None and "unbound immediate PersistentVolumeClaims" in seen.error
    agent = parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "finn"}, "spec": {}})
    assert isinstance(agent, Agent)
    status = derive_status(agent, seen, now=datetime.now(UTC), healthy=False, health_message="/healthz did not answer")
    ready = status.condition("Ready")
    assert ready is not None and ready.reason == "Unschedulable" and "PersistentVolumeClaims" in ready.message
    assert status.phase.value == "Pending"


def test_image_pull_backoff_shows_in_the_status_not_a_healthz_timeout() -> None:
    from datetime import UTC, datetime

    from controller.resources import API_VERSION, parse_resource
    from controller.status import derive_status

    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image clawpen/agent:x"}}
    seen = observed_from(KEY, sts(), pod(waiting, phase="Pending"), ENDPOINT)
    agent = parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "finn"}, "spec": {}})
    status = derive_status(agent, seen, now=datetime.now(UTC), healthy=False, health_message="/healthz did not answer")  # type: ignore[arg-type]
    ready = status.condition("Ready")
    assert ready is not None and ready.reason == "ImagePullBackOff" and "pulling image" in ready.message
