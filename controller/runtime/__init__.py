"""Runtimes make WorkloadPlans real: Docker (and Podman's Docker API) or Kubernetes."""

from controller.runtime.base import (
    LogLine,
    Observed,
    Runtime,
    RuntimeError_,
    RuntimeEvent,
    RuntimeUnavailable,
    Stats,
)

__all__ = ["LogLine", "Observed", "Runtime", "RuntimeError_", "RuntimeEvent", "RuntimeUnavailable", "Stats"]
