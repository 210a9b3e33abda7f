"""The apply path of DockerRuntime: from a WorkloadPlan to a running, hardened container.

The runtime obeys and reports; the controller decides. The container is disposable — it is
replaced whenever the plan hash changes — while the two named volumes (/data, /workspace) are not:
they carry no plan hash and survive replacement until a delete asks for them. A container that
already serves the plan's hash is kept (only started/stopped and its secret files written again).

Warm pool (controller.runtime.docker_pool): a new agent whose program takes its config after start
may claim a started pool container instead of creating one. The claimed container is renamed to the
agent's name; what labels cannot say after create (its plan hash, its volumes, its secret directory)
is kept in the claim book (controller.warm_pool.claims), consulted wherever a key maps to objects.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import docker.errors
from docker.types import Mount as DockerMount

from controller.plan import LABEL_PLAN_HASH, WorkloadPlan
from controller.runtime import podman
from controller.runtime.base import ImageMissing, Observed, RuntimeError_
from controller.runtime.docker_base import STOP_TIMEOUT
from controller.runtime.docker_names import container_name, volume_names
from controller.runtime.docker_networks import DockerNetworks
from controller.runtime.docker_observe import DockerObserve
from controller.runtime.docker_ports import free_port, port_taken
from controller.runtime.docker_secret_files import DockerSecretFiles
from controller.runtime.podman import find_image
from controller.volume_policy import VolumeNotAllowed
from controller.warm_pool.shape import claimable

TMPFS_OPTIONS = "rw,nosuid,nodev,size=64m,mode=1777"


class DockerApply(DockerNetworks, DockerSecretFiles, DockerObserve):
    """apply(): keep, replace, create or claim the agent's container so it serves the plan."""

    def _apply(self, plan: WorkloadPlan, secret_values: dict[str, bytes]) -> Observed:
        env = dict(plan.env)
        file_secrets: dict[str, bytes] = {}
        for secret in plan.secrets:
            if secret.name not in secret_values:
                raise RuntimeError_(f"secret {secret.name!r} has no value", reason="SecretMissing")
            if secret.as_env:
                try:
                    env[secret.name] = secret_values[secret.name].decode()
                except UnicodeDecodeError:
                    raise RuntimeError_(
                        f"secret {secret.name!r} is not UTF-8 text, so it cannot be an environment variable",
                        reason="InvalidSpec",
                    ) from None
            else:
                file_secrets[secret.name] = secret_values[secret.name]
        for rendered in plan.files:  # the program's rendered config, beside the secrets it refers to
            file_secrets[rendered.name] = rendered.content.encode()

        container = self._find(plan.key)
        claim = self.claims.get(plan.key)
        claimed = claim is not None and container is not None and claim.container == container.id
        serving = None  # the plan hash the existing container was made (or configured) for
        if container is not None:
            labelled = (container.labels or {}).get(LABEL_PLAN_HASH)
            serving = claim.plan_hash if claim is not None and claimed else labelled
        if container is not None and serving == plan.hash:
            # /dev/shm is empty again after a host reboot: write the files again
            if claimed and claim is not None and claim.secrets_dir and self.warm_pool is not None:
                self.warm_pool.rewrite(plan, Path(claim.secrets_dir), file_secrets)
            elif file_secrets and not self.engine.remote and not claimed:
                self._write_secrets(plan, file_secrets)
            running = container.attrs["State"]["Running"]
            if plan.running and not running:
                container.start()
            elif not plan.running and running:
                container.stop(timeout=STOP_TIMEOUT)
            return self._observe(plan.key)

        image = self.image_for(plan)
        if (
            self.warm_pool is not None
            and container is None
            and claim is None
            and claimable(plan)
            and not self._has_volumes(plan.key)
        ):
            observed = self.warm_pool.claim(plan, file_secrets)
            if observed is not None:
                return observed
        runtime = self._engine_runtime(plan)
        host_port = self.ports.wanted(plan.key, container.attrs if container is not None else None, plan.port)
        if container is not None:
            container.remove(force=True)
        if claimed and claim is not None:  # replaced by a container of the agent's own; the volumes stay
            if claim.secrets_dir:
                self.remove_secret_dir(Path(claim.secrets_dir))
            self.claims.release_container(plan.key)
        mounts = self._ensure_volumes(plan)
        if file_secrets:
            mounts.append(self._secret_mount(plan, image, file_secrets))
        else:
            self._remove_secrets(plan.key)
        with self._network_lock:
            network = self._ensure_network_locked(plan.key)
            self._creating += 1  # keeps a concurrent remove from dropping the network under us
        try:
            container = self._create(plan, image, env, mounts, network, host_port, runtime)
            if plan.running:
                try:
                    container.start()
                except docker.errors.APIError as err:
                    if not port_taken(err):
                        raise
                    # Someone else took the remembered port while the agent was away: take a new one.
                    container.remove(force=True)
                    host_port = free_port()
                    container = self._create(plan, image, env, mounts, network, host_port, runtime)
                    container.start()
        finally:
            with self._network_lock:
                self._creating -= 1
        self.ports.remember(plan.key, host_port)
        return self._observe(plan.key)

    def image_for(self, plan: WorkloadPlan) -> str:
        try:
            found = find_image(self.client, plan.image)
        except docker.errors.ImageNotFound:
            raise ImageMissing(plan.image) from None
        return next((t for t in found.tags if t.endswith(plan.image)), found.id)  # Podman: localhost/<name>

    def _has_volumes(self, key: str) -> bool:
        """The agent ran here before (its volumes exist): it keeps its data, no pool container."""
        for volume in self._volume_names(key).values():
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(volume)
                return True
        return False

    def _volume_names(self, key: str) -> dict[str, str]:
        claim = self.claims.get(key)
        return dict(claim.volumes) if claim is not None else volume_names(self.instance, key)

    def engine_runtime(self, plan: WorkloadPlan) -> str | None:
        return self._engine_runtime(plan)

    def create_container(self, *args: Any, **kwargs: Any) -> Any:
        return self._create(*args, **kwargs)

    def _engine_runtime(self, plan: WorkloadPlan) -> str | None:
        """The OCI runtime for the plan's isolation; a missing gVisor runtime is a clear, terminal error."""
        if plan.isolation != "gvisor":
            return None
        runtimes = self.client.info().get("Runtimes") or {}
        if self.gvisor_runtime not in runtimes:
            raise RuntimeError_(
                f"spec.isolation is gvisor but the Docker engine has no {self.gvisor_runtime!r} runtime "
                f"(it has: {', '.join(sorted(runtimes)) or 'none'}); enable it with deploy/host/ensure-gvisor.sh "
                "(installs runsc and registers it in /etc/docker/daemon.json), or set spec.isolation: default",
                reason="GVisorUnavailable",
                terminal=True,
            )
        return self.gvisor_runtime

    def _create(
        self,
        plan: WorkloadPlan,
        image: str,
        env: dict[str, str],
        mounts: list[DockerMount],
        network: str,
        host_port: int,
        runtime: str | None = None,
        *,
        name: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> Any:
        return self.client.containers.create(
            image=image,
            name=name or container_name(self.instance, plan.key),
            hostname=plan.name,
            labels=labels or plan.owner_labels(),
            environment=env,
            user=plan.user,
            mem_limit=f"{plan.memory_mb}m",
            memswap_limit=f"{plan.memory_mb}m",  # no swap on top of the limit
            nano_cpus=int(plan.cpu * 1e9),
            pids_limit=plan.pids_limit,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            read_only=plan.read_only_rootfs,
            tmpfs={path: TMPFS_OPTIONS for path in plan.tmpfs},
            mounts=mounts,
            # A fixed host port (not Docker's pick): it survives stop/start and replacement, so a user's
            # OpenAI client pointed at it keeps working.
            ports={f"{plan.port}/tcp": (self.engine.publish_address, host_port)},
            extra_hosts=self._extra_hosts(plan, network),
            restart_policy={"Name": plan.restart_policy},
            network=network,
            init=True,  # PID 1 forwards SIGTERM, so `stop` is quick and zombies are reaped
            runtime=runtime,  # None: the engine's default (runc); "runsc" for gVisor
            ulimits=podman.ulimits(self.client),
            detach=True,
        )

    def _ensure_volumes(self, plan: WorkloadPlan) -> list[DockerMount]:
        owner = {k: v for k, v in plan.owner_labels().items() if k != LABEL_PLAN_HASH}
        mounts = []
        for target, volume in self._volume_names(plan.key).items():
            try:
                self.client.volumes.get(volume)
            except docker.errors.NotFound:
                self.client.volumes.create(volume, labels=owner)
            mounts.append(DockerMount(target, volume, type="volume"))
        for index, extra in enumerate(plan.mounts):
            # Checked again here, right before Docker follows the path: a symlink may have changed
            # since translate judged the spec. The resolved path is what gets mounted.
            field = f"spec.volumes[{index}].source"
            try:
                if extra.source.startswith("/"):
                    source = self.volume_policy.check_host_path(extra.source, field, resolve=True)
                    mounts.append(DockerMount(extra.target, source, type="bind", read_only=extra.read_only))
                else:
                    self.volume_policy.check_named(extra.source, field)
                    mounts.append(DockerMount(extra.target, extra.source, type="volume", read_only=extra.read_only))
            except VolumeNotAllowed as err:
                raise RuntimeError_(str(err), reason="VolumeNotAllowed") from None
        return mounts
