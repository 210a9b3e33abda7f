"""The plumbing every part of DockerRuntime shares: the engine client, error mapping, lookups by key.

DockerRuntime is assembled from a few mixins, one per concern (docker_observe: reading;
docker_networks: the agents' networks; docker_secret_files: secrets as files; docker_apply: from a
plan to a container), so each stays readable on its own. They all build on this base, which
declares the state DockerRuntime.__init__ sets up and turns engine failures into the runtime's
error types. The SDK is blocking; every method runs it in a worker thread (`_run`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from controller.plan import LABEL_INSTANCE, LABEL_MANAGED, MANAGED_BY
from controller.runtime import podman
from controller.runtime.base import RuntimeError_, RuntimeUnavailable
from controller.runtime.docker_cgroup import CgroupUsage
from controller.runtime.docker_names import container_name
from controller.runtime.docker_ports import HostPorts
from controller.runtime.docker_stats import StatsSampler
from controller.runtime.engine import Engine, engine_client
from controller.volume_policy import VolumePolicy
from controller.warm_pool.claims import ClaimBook

if TYPE_CHECKING:
    from controller.runtime.docker_pool import DockerWarmPool

T = TypeVar("T")
STOP_TIMEOUT = 5
# Engine stats calls in flight at once, on a pool of their own (/api/metrics never starves the rest).
# Each call mostly waits (in a socket read) for the engine's next 1 s collection tick. Past ~32 the
# engine's own collector is the limit (50 agents: 2.3 s with 32 workers, 2.1 s with 64, on 2 cores).
STATS_WORKERS = 32
STATS_TIMEOUT = 5.0  # seconds one stats call may take before it is reported as a timeout


class DockerBase:
    """State and plumbing shared by the DockerRuntime mixins (DockerRuntime.__init__ sets it)."""

    instance: str
    gvisor_runtime: str
    volume_policy: VolumePolicy
    engine: Engine
    ports: HostPorts
    secrets_root: Path
    usage_from_cgroups: CgroupUsage
    claims: ClaimBook
    warm_pool: DockerWarmPool | None
    warm_pool_off: str | None  # why warm_pool is None (controller.warm_pool.status)
    _client: docker.DockerClient | None
    _owns_client: bool
    _network_lock: threading.Lock
    _creating: int  # container creates in flight on our network (guarded by _network_lock)
    _stats: StatsSampler

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                # honours DOCKER_HOST: Podman's socket, tcp+TLS, ssh. A pooled connection per stats worker.
                self._client = engine_client(max_pool_size=STATS_WORKERS + 8)
            except docker.errors.DockerException as err:
                raise RuntimeUnavailable(f"cannot reach the Docker engine: {str(err).splitlines()[0]}") from None
        return self._client

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self._guard, fn, *args, **kwargs)

    @staticmethod
    def _guard(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Turn engine failures into the runtime's error types, with one-line secret-free messages."""
        try:
            return fn(*args, **kwargs)
        except (requests.exceptions.ConnectionError, ConnectionError) as err:
            raise RuntimeUnavailable(f"cannot reach the Docker engine: {type(err).__name__}") from None
        except docker.errors.APIError as err:
            raise RuntimeError_(f"Docker engine: {err.explanation or err}".splitlines()[0]) from None
        except docker.errors.DockerException as err:
            raise RuntimeUnavailable(f"Docker engine: {str(err).splitlines()[0]}") from None

    @classmethod
    def _guard_error(cls, err: Exception) -> Exception:
        """The runtime error a stream should raise for `err` (same mapping as every call)."""
        try:
            cls._guard(_reraise, err)
        except Exception as mapped:  # noqa: BLE001 - whatever _guard turned it into
            return mapped
        return err

    def _labels_filter(self) -> list[str]:
        return [f"{LABEL_MANAGED}={MANAGED_BY}", f"{LABEL_INSTANCE}={self.instance}"]

    def _find(self, key: str) -> Any | None:
        try:
            return self.client.containers.get(container_name(self.instance, key))
        except docker.errors.NotFound:
            return None

    def _require(self, key: str) -> Any:
        container = self._find(key)
        if container is None:
            raise RuntimeError_(f"no container for agent {key}", reason="NotFound")
        return container

    @property
    def is_podman(self) -> bool:
        return podman.is_podman(self.client)


def _reraise(err: Exception) -> None:
    raise err
