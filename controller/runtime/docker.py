"""DockerRuntime: one hardened container per agent on a Docker (or Podman) engine, through the docker SDK.

The runtime obeys and reports; the controller decides. Everything it makes is named from the
installation's `instance` and the agent's key (docker_names), so several installations share one
engine without touching each other's objects, and everything carries the plan's owner labels so a
restarted controller adopts by label.

The class is assembled from one mixin per concern, each in its own module, so no part has to be
read through the others: docker_base (client, error mapping), docker_observe (reading, streams),
docker_networks (isolated networks), docker_secret_files (secrets on tmpfs), docker_apply (plan →
container, including the warm-pool claim). This module keeps construction, the lifecycle verbs and
the names other modules import from here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

import docker
import docker.errors

from controller.plan import WorkloadPlan
from controller.runtime.base import Observed, RuntimeError_
from controller.runtime.docker_apply import TMPFS_OPTIONS, DockerApply
from controller.runtime.docker_base import STATS_TIMEOUT, STATS_WORKERS, STOP_TIMEOUT
from controller.runtime.docker_cgroup import CgroupUsage
from controller.runtime.docker_names import (
    container_name,
    default_secrets_root,
    network_name,
    secrets_dir,
    volume_names,
)
from controller.runtime.docker_observe import WATCHED_ACTIONS
from controller.runtime.docker_pool import DockerWarmPool
from controller.runtime.docker_ports import HostPorts
from controller.runtime.docker_secret_files import SECRETS_TARGET
from controller.runtime.docker_stats import StatsSampler
from controller.runtime.docker_volumes import remove_volumes
from controller.runtime.engine import Engine, engine_from_env
from controller.volume_policy import VolumePolicy
from controller.warm_pool.claims import ClaimBook
from controller.warm_pool.status import pool_off_reason

__all__ = [
    "DockerRuntime",
    "container_name",
    "network_name",
    "volume_names",
    "secrets_dir",
    "default_secrets_root",
    "SECRETS_TARGET",
    "STATS_TIMEOUT",
    "STATS_WORKERS",
    "STOP_TIMEOUT",
    "TMPFS_OPTIONS",
    "WATCHED_ACTIONS",
]


class DockerRuntime(DockerApply):
    """The Runtime on a Docker or Podman engine (see the module docstring for how it is put together)."""

    name = "docker"

    def __init__(
        self,
        instance: str,
        *,
        client: docker.DockerClient | None = None,
        secrets_root: Path | None = None,
        engine: Engine | None = None,
        ports_file: Path | None = None,
        volume_policy: VolumePolicy | None = None,
        gvisor_runtime: str = "runsc",
        claims_file: Path | None = None,
        warm_pool: bool = True,
    ):
        self.gvisor_runtime = gvisor_runtime
        self.instance = instance
        self.volume_policy = volume_policy or VolumePolicy()
        self.engine = engine or engine_from_env(os.environ)
        self.ports = HostPorts(ports_file)
        self._client = client
        self._owns_client = client is None
        self.secrets_root = secrets_root or default_secrets_root(instance)
        self._network_lock = threading.Lock()
        self._stats = StatsSampler(STATS_WORKERS, STATS_TIMEOUT)
        # A local engine's numbers are read from the cgroup files it reads itself, without waiting for
        # its 1 s stats tick (docker_cgroup); a remote one is always asked.
        self.usage_from_cgroups = CgroupUsage()
        self.usage_from_cgroups.available &= not self.engine.remote
        self._creating = 0  # container creates in flight on our network (guarded by _network_lock)
        self.claims = ClaimBook(claims_file)
        # The pool writes the claimed agent's files into a running container's secret directory: a
        # local engine only, and as root (OpenClaw's file secrets must be owned by the agent's uid).
        # The reason it is off is shown by the API (controller.warm_pool.status).
        self.warm_pool_off = pool_off_reason(enabled=warm_pool, remote=self.engine.remote, root=os.geteuid() == 0)
        self.warm_pool = DockerWarmPool(self, self.claims) if self.warm_pool_off is None else None

    async def apply(self, plan: WorkloadPlan, secret_values: Mapping[str, bytes] | None = None) -> Observed:
        if plan.instance != self.instance:
            raise RuntimeError_(f"plan for instance {plan.instance!r} given to runtime of {self.instance!r}")
        return await self._run(self._apply, plan, dict(secret_values or {}))

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self, key: str) -> None:
        await self._run(lambda: self._require(key).start())

    async def stop(self, key: str) -> None:
        await self._run(lambda: self._require(key).stop(timeout=STOP_TIMEOUT))

    async def pause(self, key: str) -> None:
        """Freeze the container's processes in place (spec.idle; see controller.idle)."""
        await self._run(lambda: self._require(key).pause())

    async def unpause(self, key: str) -> None:
        await self._run(lambda: self._require(key).unpause())

    async def remove(self, key: str, *, volumes: bool = False) -> None:
        await self._run(self._remove, key, volumes)

    def _remove(self, key: str, volumes: bool) -> None:
        self._remove_container(key)
        self._remove_secrets(key)
        self.ports.forget(key)
        claim = self.claims.get(key)
        if claim is not None and claim.secrets_dir:
            self.remove_secret_dir(Path(claim.secrets_dir))
        self.claims.release_container(key)
        if volumes:
            remove_volumes(self.client, list(self._volume_names(key).values()), lambda: self._remove_container(key))
            self.claims.forget(key)  # the claimed volumes are gone too: nothing left to remember
        self._release_network(key)

    def _remove_container(self, key: str) -> None:
        container = self._find(key)
        if container is not None:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass

    async def remove_volumes(self, names: list[str]) -> list[str]:
        return await self._run(remove_volumes, self.client, names, lambda: None)

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self.remove_network()  # only when no agent of ours is left
            except RuntimeError_:
                pass
        try:
            self.secrets_root.rmdir()  # only when empty: running agents keep their secret files
        except OSError:
            pass
        self._stats.close()
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
