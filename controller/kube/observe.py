"""StatefulSet + Pod (as the API returns them) → Observed. Pure, so it is tested on recorded shapes.

The reconcile core was written against Docker's vocabulary (running / restarting / exited, exit
code, OOM); this maps a pod's container status onto it so derive_status() needs no kube branch:
- waiting in CrashLoopBackOff → state "restarting" (the kubelet restarts it; the controller waits);
- lastState.terminated.reason OOMKilled → oom_killed, with that exit code;
- a waiting reason such as ImagePullBackOff becomes the state and `error` carries its message;
- replicas 0 → "stopped", whatever pods are still terminating;
- a pod Pending with PodScheduled=False → state "Unschedulable" and its message (no node fits, a
  PersistentVolumeClaim without a storage class stays unbound...), shown in the Agent's status.

`running` means what start/stop control: the StatefulSet is scaled up and its pod is not
crashing. A pod still being scheduled or pulling its image counts as running-but-not-ready (the
Docker analogue is a started container that does not answer /healthz yet), so a stop requested
at that moment scales to zero instead of waiting for a pod that may never start; readiness is
reported separately (`healthy`, and the reconciler's /healthz probe).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.kube.objects import CONTAINER
from controller.plan import LABEL_INSTANCE, LABEL_PLAN_HASH
from controller.runtime.base import Observed


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def container_status(pod: dict[str, Any] | None) -> dict[str, Any]:
    if not pod:
        return {}
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == CONTAINER), statuses[0] if statuses else {})


def pod_ready(pod: dict[str, Any] | None) -> bool | None:
    if not pod:
        return None
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return None


def observed_from(
    key: str, statefulset: dict[str, Any] | None, pod: dict[str, Any] | None, endpoint: str
) -> Observed:
    if statefulset is None:
        return Observed(key=key, exists=False)
    labels = (statefulset.get("metadata") or {}).get("labels") or {}
    common: dict[str, Any] = {
        "key": key,
        "exists": True,
        "plan_hash": labels.get(LABEL_PLAN_HASH),
        "instance": labels.get(LABEL_INSTANCE),
        "endpoint": endpoint,
    }
    replicas = (statefulset.get("spec") or {}).get("replicas", 1)
    if replicas == 0:
        return Observed(**common, state="stopped")
    if pod is None:
        return Observed(**common, running=True, state="pending")

    status = container_status(pod)
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    restarts = int(status.get("restartCount") or 0)
    oom = last.get("reason") == "OOMKilled"
    common.update(
        restart_count=restarts,
        oom_killed=oom,
        container_id=status.get("containerID") or None,
        healthy=pod_ready(pod),
    )
    if "running" in state and (pod.get("status") or {}).get("phase") == "Running":
        return Observed(
            **common, running=True, state="running", started_at=_time(state["running"].get("startedAt"))
        )
    if "terminated" in state:
        ended = state["terminated"]
        return Observed(
            **{**common, "oom_killed": oom or ended.get("reason") == "OOMKilled"},
            state="exited",
            exit_code=ended.get("exitCode"),
            finished_at=_time(ended.get("finishedAt")),
            error=ended.get("message") or ended.get("reason"),
        )
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason") or ""
    if reason == "CrashLoopBackOff":
        return Observed(
            **common,
            state="restarting",
            exit_code=last.get("exitCode"),
            finished_at=_time(last.get("finishedAt")),
            error=last.get("message") or last.get("reason"),
        )
    phase = ((pod.get("status") or {}).get("phase") or "Pending").lower()
    if not reason and phase == "pending":
        unscheduled = _unscheduled(pod)
        if unscheduled is not None:  # e.g. no node fits, or a PVC without a storage class stays unbound
            return Observed(**common, running=True, state=unscheduled[0], error=unscheduled[1])
    return Observed(**common, running=True, state=reason or phase, error=waiting.get("message") or None)


def _unscheduled(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of a PodScheduled=False condition: why the pod sits in Pending."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = condition.get("reason") or "Unschedulable"
            return reason, f"the pod cannot be scheduled: {condition.get('message') or reason}"
    return None
