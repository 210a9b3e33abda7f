"""The Runtime interface: observe what runs, apply a plan, and read logs and stats.

The controller owns every decision; a runtime only reports and obeys. What it creates carries the
plan's owner labels (controller.plan), so after a restart the controller adopts what exists by
label and removes what no spec wants any more. Keys are "namespace/name" of the owning Agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from controller.plan import WorkloadPlan


class RuntimeError_(Exception):
    """A runtime operation failed; `reason` becomes the Ready condition's reason."""

    def __init__(self, message: str, reason: str = "RuntimeError", *, terminal: bool = False):
        super().__init__(message)
        self.reason = reason
        self.terminal = terminal  # the agent is Failed (retries continue, with backoff) rather than Pending


class RuntimeUnavailable(RuntimeError_):
    """The engine/API server cannot be reached (HTTP 503 at the gateway)."""

    def __init__(self, message: str):
        super().__init__(message, reason="RuntimeUnavailable")


class ImageMissing(RuntimeError_):
    def __init__(self, image: str):
        super().__init__(
            f"image {image!r} is not present locally; build it with `clawpen image build`"
            + (" (OpenClaw: `clawpen image build --program openclaw`, a few minutes)" if "openclaw" in image else ""),
            reason="ImageMissing",
        )
        self.image = image


@dataclass(frozen=True)
class Observed:
    """What the runtime sees for one agent. `exists=False` means nothing of ours is there."""

    key: str
    exists: bool
    running: bool = False
    state: str = "absent"  # docker: created|running|restarting|paused|exited|dead; kube: pod phase
    plan_hash: str | None = None
    instance: str | None = None
    container_id: str | None = None
    endpoint: str | None = None  # http://host:port where the chat contract answers
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    healthy: bool | None = None  # None: unknown / no health check
    error: str | None = None


@dataclass(frozen=True)
class RuntimeEvent:
    """A change the runtime saw (die, oom, destroy, start...) for an owned workload."""

    key: str
    action: str


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime | None
    level: str
    message: str
    stream: Literal["stdout", "stderr"] = "stdout"


@dataclass(frozen=True)
class Stats:
    memory_mb: float
    memory_limit_mb: float
    cpu_percent: float
    network_rx_bytes: int
    network_tx_bytes: int
    pids: int = 0


class Runtime(Protocol):
    name: str  # "docker" | "kubernetes"

    async def version(self) -> str: ...

    async def observe(self, key: str) -> Observed: ...

    async def list_owned(self) -> list[Observed]: ...

    async def apply(self, plan: WorkloadPlan, secret_values: Mapping[str, bytes] | None = None) -> Observed:
        """Create (or replace, when the hash differs) the workload; start it when plan.running."""
        ...

    async def start(self, key: str) -> None: ...

    async def stop(self, key: str) -> None: ...

    async def remove(self, key: str, *, volumes: bool = False) -> None: ...

    def logs(self, key: str, *, tail: int | None = 100, follow: bool = False) -> AsyncIterator[LogLine]: ...

    async def stats(self, key: str) -> Stats: ...

    def events(self) -> AsyncIterator[RuntimeEvent]: ...

    async def close(self) -> None: ...
