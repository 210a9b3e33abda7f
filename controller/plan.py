"""WorkloadPlan: everything a runtime needs to run one agent, and nothing it must look up.

translate() builds it from a spec without touching the world; a runtime turns it into containers
(or a StatefulSet). Its hash is what the runtime labels its objects with: when the hash of the
wanted plan differs from the label on what runs, the controller replaces the workload. Whether the
agent should be running is not part of the hash, so start/stop never recreates anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

LABEL_PREFIX = "clawpen.dev"
LABEL_MANAGED = f"{LABEL_PREFIX}/managed-by"
LABEL_INSTANCE = f"{LABEL_PREFIX}/instance"
LABEL_KIND = f"{LABEL_PREFIX}/kind"
LABEL_NAMESPACE = f"{LABEL_PREFIX}/namespace"
LABEL_NAME = f"{LABEL_PREFIX}/name"
LABEL_PLAN_HASH = f"{LABEL_PREFIX}/plan-hash"
MANAGED_BY = "clawpen"

AGENT_PORT = 8080  # the chat contract's port inside every agent container
AGENT_UID = 10001  # the non-root user agents run as


@dataclass(frozen=True)
class Mount:
    """A volume in the container: a named volume (plain name) or a host path (absolute)."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class SecretMount:
    """A secret the agent gets at /run/secrets/<name>; version (not value) feeds the plan hash."""

    name: str
    scope: str  # "agent" (its own) or "global"
    version: str
    as_env: bool = False


@dataclass(frozen=True)
class PlanFile:
    """A file the agent program reads at /run/secrets/<name> (e.g. a rendered config). Delivered
    beside the secrets (tmpfs, read-only): rendered configs may reference secret files, never hold them."""

    name: str
    content: str


# Fields added after plans were first hashed: left out of the hash while they hold their default,
# so upgrading Claw Pen does not replace every running agent.
_LATE_DEFAULTS: dict[str, object] = {
    "isolation": "default",
    "program": "clawpen",
    "files": (),
    "readiness_path": "/healthz",
    "start_timeout_s": 60,
}


@dataclass(frozen=True)
class WorkloadPlan:
    namespace: str
    name: str  # the resource's name
    instance: str  # which Claw Pen installation owns it (several may share one Docker host)
    image: str
    env: dict[str, str]
    memory_mb: int
    cpu: float
    restart_policy: str
    mounts: tuple[Mount, ...]
    secrets: tuple[SecretMount, ...] = ()
    port: int = AGENT_PORT
    user: str = f"{AGENT_UID}:{AGENT_UID}"
    pids_limit: int = 512
    read_only_rootfs: bool = True
    tmpfs: tuple[str, ...] = ("/tmp",)
    extra_hosts: tuple[tuple[str, str], ...] = (("host.docker.internal", "host-gateway"),)
    labels: dict[str, str] = field(default_factory=dict)
    isolation: str = "default"  # default | gvisor: the runtime picks runc/runsc or a RuntimeClass
    program: str = "clawpen"  # which agent program runs (controller.programs)
    files: tuple[PlanFile, ...] = ()
    readiness_path: str = "/healthz"  # answers 200 once the agent can chat
    start_timeout_s: int = 60  # how long a start may take before the status calls it slow
    # Not hashed: start/stop flips this without replacing anything.
    running: bool = True

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def hashed_fields(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("running")
        for name, default in _LATE_DEFAULTS.items():
            if getattr(self, name) == default:
                data.pop(name)
        return data

    @property
    def hash(self) -> str:
        blob = json.dumps(self.hashed_fields(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def owner_labels(self) -> dict[str, str]:
        """Labels on everything the runtime creates for this plan (the hash included)."""
        return {
            **self.labels,
            LABEL_MANAGED: MANAGED_BY,
            LABEL_INSTANCE: self.instance,
            LABEL_KIND: "Agent",
            LABEL_NAMESPACE: self.namespace,
            LABEL_NAME: self.name,
            LABEL_PLAN_HASH: self.hash,
        }
