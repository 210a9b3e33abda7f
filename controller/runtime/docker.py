"""DockerRuntime: one hardened container per agent on a Docker (or Podman) engine, through the docker SDK.

The runtime obeys and reports; the controller decides. Everything it makes is named from the
installation's `instance` and the agent's key, so several installations (a user's and a test run's)
share one engine without touching each other's objects, and everything carries the plan's owner
labels so a restarted controller adopts by label. The container is disposable — it is replaced
whenever the plan hash changes — while the two named volumes (/data, /workspace) are not: they
carry no plan hash and survive replacement until a delete asks for them.

Secrets reach the agent as files on tmpfs (never on disk, never in `docker inspect`) bind-mounted
read-only at /run/secrets; only a secret the user explicitly marks `as_env` becomes an env var.
On a remote engine (split mode, see controller.runtime.engine) the files travel over the engine API
into a per-agent volume instead (controller.runtime.docker_secret_volume), and ports are published
on the engine machine's address.

Warm pool (controller.runtime.docker_pool): a new agent whose program takes its config after start
may claim a started pool container instead of creating one. The claimed container is renamed to the
agent's name; what labels cannot say after create (its plan hash, its volumes, its secret directory)
is kept in the claim book (controller.warm_pool.claims), consulted wherever a key maps to objects.

The SDK is blocking; every method runs it in a worker thread. Streams (logs, events) run their
blocking iterator in a thread that feeds an asyncio queue, and closing the async iterator closes
the HTTP response so the thread ends too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.types import Mount as DockerMount

from controller.plan import (
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_NAMESPACE,
    LABEL_PLAN_HASH,
    MANAGED_BY,
    WorkloadPlan,
)
from controller.runtime import podman
from controller.runtime.base import (
    ImageMissing,
    LogLine,
    Observed,
    RuntimeError_,
    RuntimeEvent,
    RuntimeUnavailable,
    Stats,
)
from controller.runtime.docker_cgroup import CgroupUsage, NotRunning
from controller.runtime.docker_parse import observed_from_attrs, parse_log_line
from controller.runtime.docker_pool import LABEL_POOL_SHAPE, DockerWarmPool, slot_prefix
from controller.runtime.docker_ports import HostPorts, free_port, port_taken
from controller.runtime.docker_secret_volume import fill_secret_volume, remove_secret_volume
from controller.runtime.docker_stats import StatsSampler
from controller.runtime.docker_streams import LogStream, threaded
from controller.runtime.docker_volumes import VolumeInfo, list_agent_volumes, remove_volumes
from controller.runtime.engine import Engine, engine_client, engine_from_env
from controller.runtime.podman import find_image
from controller.volume_policy import VolumeNotAllowed, VolumePolicy
from controller.warm_pool.claims import ClaimBook
from controller.warm_pool.shape import claimable

__all__ = [
    "DockerRuntime",
    "container_name",
    "network_name",
    "volume_names",
    "secrets_dir",
    "default_secrets_root",
]

T = TypeVar("T")
SECRETS_TARGET = "/run/secrets"
TMPFS_OPTIONS = "rw,nosuid,nodev,size=64m,mode=1777"
STOP_TIMEOUT = 5
# Engine stats calls in flight at once, on a pool of their own (/api/metrics never starves the rest).
# Each call mostly waits (in a socket read) for the engine's next 1 s collection tick. Past ~32 the
# engine's own collector is the limit (50 agents: 2.3 s with 32 workers, 2.1 s with 64, on 2 cores).
STATS_WORKERS = 32
STATS_TIMEOUT = 5.0  # seconds one stats call may take before it is reported as a timeout
WATCHED_ACTIONS = frozenset({"die", "oom", "destroy", "start", "stop", "pause", "unpause"})
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")


def _split_key(key: str) -> tuple[str, str]:
    namespace, sep, name = key.partition("/")
    if not sep or not namespace or not name:
        raise ValueError(f"key must be 'namespace/name', got {key!r}")
    return namespace, name


# Underscores separate the parts: namespaces and names are DNS-1123 labels (no "_"), so no two keys
# can ever map to one name.
def container_name(instance: str, key: str) -> str:
    namespace, name = _split_key(key)
    return f"clawpen_{instance}_{namespace}_{name}"


def network_name(instance: str) -> str:
    return f"clawpen_{instance}"


def volume_names(instance: str, key: str) -> dict[str, str]:
    """Named volumes per agent: mount target → volume name."""
    base = container_name(instance, key)
    return {"/data": f"{base}_data", "/workspace": f"{base}_workspace"}


def default_secrets_root(instance: str) -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() else Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp")
    return base / "clawpen" / instance


def secrets_dir(root: Path, key: str) -> Path:
    namespace, name = _split_key(key)
    return root / f"{namespace}_{name}"


def _uid_gid(user: str) -> tuple[int, int] | None:
    uid, _, gid = user.partition(":")
    if uid.isdigit():
        return int(uid), int(gid) if gid.isdigit() else int(uid)
    return None


class DockerRuntime:
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
        self.warm_pool: DockerWarmPool | None = None
        # The pool writes the claimed agent's files into a running container's secret directory: a
        # local engine only, and as root (OpenClaw's file secrets must be owned by the agent's uid).
        if warm_pool and not self.engine.remote and os.geteuid() == 0:
            self.warm_pool = DockerWarmPool(self, self.claims)

    # -- plumbing ---------------------------------------------------------------------------------------

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

    # -- reading ----------------------------------------------------------------------------------------

    async def version(self) -> str:
        info = await self._run(self.client.version)
        return str(info.get("Version", "unknown"))

    async def observe(self, key: str) -> Observed:
        return await self._run(self._observe, key)

    def _observe(self, key: str) -> Observed:
        container = self._find(key)
        if container is None:
            return Observed(key=key, exists=False)
        return self._observed(key, container.attrs)

    def observe_now(self, key: str) -> Observed:
        return self._observe(key)

    def _observed(self, key: str, attrs: dict[str, Any]) -> Observed:
        observed = observed_from_attrs(key, attrs, self.engine.endpoint_host)
        if observed.plan_hash is None and LABEL_POOL_SHAPE in ((attrs.get("Config") or {}).get("Labels") or {}):
            claim = self.claims.get(key)  # a claimed pool container: its plan hash is in the claim book
            if claim is not None and claim.container == attrs.get("Id"):
                observed = dataclasses.replace(observed, plan_hash=claim.plan_hash)
        return observed

    async def list_owned(self) -> list[Observed]:
        return await self._run(self._list_owned)

    def _list_owned(self) -> list[Observed]:
        found = []
        for container in self.client.containers.list(all=True, filters={"label": self._labels_filter()}):
            labels = container.labels or {}
            if not labels.get(LABEL_NAMESPACE) or not labels.get(LABEL_NAME):
                claim = self.claims.by_container(container.id) if LABEL_POOL_SHAPE in labels else None
                if claim is not None:  # a claimed pool container serves this agent
                    found.append(self._observed(claim.key, container.attrs))
                continue  # a helper (snapshot copy, image build) or an unclaimed pool container
            key = f"{labels[LABEL_NAMESPACE]}/{labels[LABEL_NAME]}"
            found.append(observed_from_attrs(key, container.attrs, self.engine.endpoint_host))
        return found

    # -- apply ------------------------------------------------------------------------------------------

    async def apply(self, plan: WorkloadPlan, secret_values: Mapping[str, bytes] | None = None) -> Observed:
        if plan.instance != self.instance:
            raise RuntimeError_(f"plan for instance {plan.instance!r} given to runtime of {self.instance!r}")
        return await self._run(self._apply, plan, dict(secret_values or {}))

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

    @property
    def network_lock(self) -> threading.Lock:
        return self._network_lock

    def ensure_network_locked(self, key: str) -> str:
        return self._ensure_network_locked(key)

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

    def _networks(self, name: str | None = None) -> list[Any]:
        """Networks named exactly `name` (default: the instance network); Docker's name filter also
        matches substrings."""
        name = name or network_name(self.instance)
        return [n for n in self.client.networks.list(names=[name]) if n.name == name]

    def _network_for(self, key: str) -> str:
        """Docker: one network per installation with inter-container traffic off. Podman's compat API
        ignores `enable_icc`, so there each agent gets a network of its own, created `isolate`d
        (netavark drops traffic between isolated networks): agents still cannot reach each other."""
        return f"{container_name(self.instance, key)}_net" if self.is_podman else network_name(self.instance)

    def _ensure_network_locked(self, key: str) -> str:
        """Create the agent's network on first use (caller holds _network_lock: Docker does not
        enforce unique network names, so two workers must not both create one)."""
        name = self._network_for(key)
        if not self._networks(name):
            options = {"isolate": "true"} if self.is_podman else {"com.docker.network.bridge.enable_icc": "false"}
            self.client.networks.create(
                name,
                driver="bridge",
                options=options,
                labels={LABEL_MANAGED: MANAGED_BY, LABEL_INSTANCE: self.instance},
                check_duplicate=True,
            )
        return name

    def _release_network(self, key: str | None = None) -> bool:
        """Remove networks no container of ours needs any more; True when none of ours is left.

        Docker's default address pools hold about 30 bridge networks per host, so a network per
        installation must not outlive its last agent. Stopped containers count: they reconnect to it
        by name when started again. On Podman, a removed agent's own network goes with it."""
        with self._network_lock:
            if self._creating:
                return False
            if key is not None and self.is_podman:
                for network in self._networks(self._network_for(key)):
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        network.remove()
            if self.client.containers.list(all=True, sparse=True, filters={"label": self._labels_filter()}):
                return False
            for network in self.client.networks.list(filters={"label": self._labels_filter()}):
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
            for network in self._networks():
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
            return True

    def _extra_hosts(self, plan: WorkloadPlan, network: str) -> dict[str, str]:
        """Podman 4.3 writes `host-gateway` into /etc/hosts literally: use the network's gateway there."""
        hosts = dict(plan.extra_hosts)
        if self.is_podman and "host-gateway" in hosts.values():
            configs = (self.client.networks.get(network).attrs.get("IPAM") or {}).get("Config") or []
            gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
            if gateway:
                hosts = {name: gateway if ip == "host-gateway" else ip for name, ip in hosts.items()}
        return hosts

    @property
    def is_podman(self) -> bool:
        return podman.is_podman(self.client)

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

    def _write_secrets(self, plan: WorkloadPlan, values: dict[str, bytes]) -> Path:
        return self.write_secret_files(secrets_dir(self.secrets_root, plan.key), plan.user, values)

    def write_secret_files(self, directory: Path, user: str, values: dict[str, bytes]) -> Path:
        """Write secret files on tmpfs: dir 0500 and files 0400, owned by the agent's uid when we can.

        The directory is updated in place (temp file + rename), never recreated: a running container
        has it bind-mounted, and a new directory would be invisible to it.
        """
        for name in values:
            if not _SECRET_NAME.match(name):
                raise RuntimeError_(f"secret name {name!r} cannot be a file name", reason="InvalidSpec")
        self.secrets_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.secrets_root, 0o700)  # the parent keeps other host users out in every case
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        owner = _uid_gid(user) if os.geteuid() == 0 else None
        # Not root: the container's uid is someone else, so it needs world-read on the leaf; the 0700
        # parent (ours) still keeps host users out, and the bind mount does not traverse it.
        file_mode, dir_mode = (0o400, 0o500) if owner else (0o444, 0o555)
        for name, value in values.items():
            temp = directory / f".{name}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(value)
            if owner:
                os.chown(temp, *owner)
            os.chmod(temp, file_mode)
            os.replace(temp, directory / name)
        for stale in directory.iterdir():
            if stale.name not in values:
                stale.unlink()
        if owner:
            os.chown(directory, *owner)
        os.chmod(directory, dir_mode)
        return directory

    def _secret_mount(self, plan: WorkloadPlan, image: str, values: dict[str, bytes]) -> DockerMount:
        if not self.engine.remote:
            return DockerMount(SECRETS_TARGET, str(self._write_secrets(plan, values)), type="bind", read_only=True)
        volume = self._secret_volume(plan.key)
        owner = _uid_gid(plan.user) or (0, 0)
        labels = {k: v for k, v in plan.owner_labels().items() if k != LABEL_PLAN_HASH}
        fill_secret_volume(self.client, volume, image, values, owner, labels)
        return DockerMount(SECRETS_TARGET, volume, type="volume", read_only=True)

    def _secret_volume(self, key: str) -> str:
        return f"{container_name(self.instance, key)}_secrets"

    def _remove_secrets(self, key: str) -> None:
        if self.engine.remote:
            remove_secret_volume(self.client, self._secret_volume(key))
            return
        self.remove_secret_dir(secrets_dir(self.secrets_root, key))

    @staticmethod
    def remove_secret_dir(directory: Path) -> None:
        try:
            os.chmod(directory, 0o700)  # read-only (0500/0555) until now; unlinking needs write
        except OSError:
            return
        shutil.rmtree(directory, ignore_errors=True)

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

    async def list_volumes(self) -> list[VolumeInfo]:
        """Every named volume of this installation's agents (deleted agents' included)."""
        return await self._run(self._list_volumes)

    def _list_volumes(self) -> list[VolumeInfo]:
        owners = {volume: claim.key for claim in self.claims.all() for volume in claim.volumes.values()}
        out = []
        for info in list_agent_volumes(self.client, self.instance):
            if info.name in owners:  # a claimed pool volume: its agent's now
                out.append(dataclasses.replace(info, key=owners[info.name]))
            elif not info.name.startswith(slot_prefix(self.instance)):  # unclaimed slots are the pool's
                out.append(info)
        return out

    async def remove_volumes(self, names: list[str]) -> list[str]:
        return await self._run(remove_volumes, self.client, names, lambda: None)

    async def remove_network(self) -> bool:
        """Drop this instance's network if no container of ours is left; True when it is gone."""
        return await self._run(self._release_network)

    # -- streams ----------------------------------------------------------------------------------------

    async def logs(self, key: str, *, tail: int | None = 100, follow: bool = False) -> AsyncIterator[LogLine]:
        def _open() -> LogStream:
            container = self._require(key)
            return LogStream.open(self.client.api, container.id, tail=tail, follow=follow)

        stream = await self._run(_open)
        async for stream_name, raw in threaded(stream.lines, stream.interrupt, self._guard_error):
            yield parse_log_line(raw, stream_name)

    async def stats(self, key: str) -> Stats:
        """One usage sample, taken on the sampler's own bounded pool (never the shared one)."""

        def _sample() -> dict[str, Any]:
            name = container_name(self.instance, key)
            try:
                local = self.usage_from_cgroups.sample(name, self.client.api.inspect_container)
            except docker.errors.NotFound:
                raise RuntimeError_(f"no container for agent {key}", reason="NotFound") from None
            except NotRunning:
                raise RuntimeError_(f"agent {key} is not running", reason="NotRunning") from None
            if local is not None:
                return local
            try:
                sample: dict[str, Any] = self.client.api.stats(name, stream=False, one_shot=True)
            except docker.errors.NotFound:
                raise RuntimeError_(f"no container for agent {key}", reason="NotFound") from None
            if str(sample.get("read", "")).startswith("0001-") or not sample.get("memory_stats"):
                raise RuntimeError_(f"agent {key} is not running", reason="NotRunning")
            return sample

        return await self._stats.sample(key, lambda: self._guard(_sample))

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        stream = await self._run(
            self.client.events, decode=True, filters={"type": "container", "label": self._labels_filter()}
        )
        async for event in threaded(lambda: iter(stream), stream.close, self._guard_error):
            action = str(event.get("Action") or event.get("status") or "").split(":")[0]
            if action not in WATCHED_ACTIONS:
                continue
            actor = event.get("Actor") or {}
            attributes = actor.get("Attributes") or {}
            if not attributes.get(LABEL_NAMESPACE) or not attributes.get(LABEL_NAME):
                claim = self.claims.by_container(str(actor.get("ID") or event.get("id") or ""))
                if claim is not None:  # a claimed pool container: the agent it serves
                    yield RuntimeEvent(key=claim.key, action=action)
                continue  # a helper container (snapshot copy) or a pool slot: nothing to reconcile
            key = f"{attributes.get(LABEL_NAMESPACE, '')}/{attributes.get(LABEL_NAME, '')}"
            yield RuntimeEvent(key=key, action=action)

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


def _reraise(err: Exception) -> None:
    raise err
