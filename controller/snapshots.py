"""Snapshots of an agent's state (/data and /workspace) with restore, clone, export and import.

The original's Docker snapshots held only metadata. Here a snapshot is the real bytes: a tar of
both volumes taken while the container is paused (so the copy is consistent: no process writes
during it, yet the agent keeps its connections), the Agent spec it ran, and metadata with the
archive's sha256. Layout: <home>/snapshots/<agent>/<id>/{data.tar, agent.yaml, meta.json}; a
snapshot directory appears only complete (written under .tmp-<id>, then renamed).

Writing into volumes goes through a short-lived helper container from the agent image (user
10001, no network) that empties the volumes, then Docker's archive API unpacks the tar into them.
Every archive is verified end to end (sha256, then each entry) before a byte of an agent's data is
touched, so a corrupt or truncated archive is refused and the agent keeps what it had.

Docker calls are synchronous (docker SDK). The export archive format and the async glue with the
Store (clone, import) live in controller.snapshot_export.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import re
import secrets as pysecrets
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from controller.archive import (
    CHUNK,
    HashingWriter,
    Progress,
    append_stream,
    no_progress,
    verify_data_tar,
)
from controller.plan import (
    AGENT_UID,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_NAMESPACE,
    MANAGED_BY,
)
from controller.resources import DNS1123_LABEL, Agent, ManifestError, parse_resource
from controller.runtime import podman
from controller.runtime.docker import container_name, volume_names  # the runtime's naming, one source
from controller.runtime.podman import find_image
from controller.settings import Settings
from controller.warm_pool.claims import agent_volumes  # a claimed pool container's volumes

TARGETS = ("/data", "/workspace")
SNAPSHOT_ID = re.compile(r"^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$")
LABEL_ROLE = "clawpen.dev/role"

# Runs in the helper container (the image has python3 but no shell): empty both volumes.
_WIPE = (
    "import os, shutil\n"
    "for root in ('/data', '/workspace'):\n"
    "    for e in os.scandir(root):\n"
    "        shutil.rmtree(e.path) if e.is_dir(follow_symlinks=False) else os.unlink(e.path)\n"
)


class SnapshotError(Exception):
    status = 500


class SnapshotNotFound(SnapshotError):
    status = 404


class SnapshotConflict(SnapshotError):
    status = 409


class InvalidName(SnapshotError):
    status = 422


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    agent_id: str
    created_at: datetime
    size_bytes: int
    sha256: str

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "created_at": self.created_at.isoformat(),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SnapshotInfo:
        return cls(
            id=str(doc["id"]),
            agent_id=str(doc["agent_id"]),
            created_at=datetime.fromisoformat(doc["created_at"]),
            size_bytes=int(doc["size_bytes"]),
            sha256=str(doc["sha256"]),
        )


def manifest_of(agent: Agent) -> dict[str, Any]:
    """The user-owned part of an agent: what a snapshot keeps and a clone or import recreates."""
    doc = agent.dump()
    doc.pop("status", None)
    meta = doc["metadata"]
    doc["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    return doc


def new_snapshot_id() -> str:
    """Sortable by time (milliseconds), unique by a random suffix."""
    stamp = datetime.now(UTC)
    return f"{stamp:%Y%m%dT%H%M%S}{stamp.microsecond // 1000:03d}Z-{pysecrets.token_hex(3)}"


def check_agent_name(name: str) -> str:
    if not isinstance(name, str) or not DNS1123_LABEL.match(name):
        raise InvalidName(f"invalid agent name {str(name)[:80]!r}: must be a DNS-1123 label")
    return name


def _check_id(sid: str) -> str:
    if not isinstance(sid, str) or not SNAPSHOT_ID.match(sid):
        raise SnapshotNotFound(f"no snapshot {str(sid)[:80]!r} (ids look like 20260101T120000123Z-ab12cd)")
    return sid


class Snapshots:
    def __init__(self, settings: Settings, client: docker.DockerClient | None = None):
        self.settings = settings
        self.root = settings.home / "snapshots"
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self.settings.runtime != "docker":
            raise SnapshotConflict(
                f"snapshots copy Docker volumes; this installation runs agents on {self.settings.runtime!r} "
                "(use your cluster's VolumeSnapshots there)"
            )
        if self._client is None:
            self._client = docker.from_env(timeout=600)
        return self._client

    # ---- listing ---------------------------------------------------------------------------------

    def list(self, agent: str) -> builtins.list[SnapshotInfo]:
        """Newest first."""
        folder = self.root / check_agent_name(agent)
        if not folder.is_dir():
            return []
        infos = []
        for entry in folder.iterdir():
            if SNAPSHOT_ID.match(entry.name) and (entry / "meta.json").is_file():
                with contextlib.suppress(OSError, ValueError, KeyError):
                    infos.append(SnapshotInfo.from_doc(json.loads((entry / "meta.json").read_text())))
        return sorted(infos, key=lambda i: i.id, reverse=True)

    def get(self, agent: str, sid: str) -> SnapshotInfo:
        path = self.path(agent, sid) / "meta.json"
        try:
            return SnapshotInfo.from_doc(json.loads(path.read_text()))
        except FileNotFoundError:
            raise SnapshotNotFound(f"agent {agent} has no snapshot {sid}") from None
        except (ValueError, KeyError) as err:
            raise SnapshotError(f"snapshot {agent}/{sid}: metadata is corrupt ({err})") from None

    def spec(self, agent: str, sid: str) -> Agent:
        self.get(agent, sid)
        try:
            parsed = parse_resource(yaml.safe_load((self.path(agent, sid) / "agent.yaml").read_text()))
        except (OSError, yaml.YAMLError, ManifestError) as err:
            raise SnapshotError(f"snapshot {agent}/{sid}: its agent spec is unreadable ({err})") from None
        assert isinstance(parsed, Agent)
        return parsed

    def delete(self, agent: str, sid: str) -> None:
        self.get(agent, sid)
        with self._locked(agent):
            shutil.rmtree(self.path(agent, sid))

    def delete_all(self, agent: str) -> None:
        shutil.rmtree(self.root / check_agent_name(agent), ignore_errors=True)

    # ---- create ----------------------------------------------------------------------------------

    def create(self, agent: Agent, progress: Progress = no_progress) -> SnapshotInfo:
        """Copy /data and /workspace (paused around the copy) with the spec into a new snapshot."""
        name = check_agent_name(agent.metadata.name)
        key = f"{agent.metadata.namespace}/{name}"
        with self._locked(name):
            sid = new_snapshot_id()
            stamp = datetime.now(UTC)
            tmp = self.root / name / f".tmp-{sid}"
            tmp.mkdir(parents=True, mode=0o700)
            try:
                with self._source(key) as source, (tmp / "data.tar").open("wb") as raw:
                    writer = HashingWriter(raw, progress, "snapshot")
                    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as out:  # type: ignore[call-overload]
                        for target in TARGETS:
                            chunks, _ = source.get_archive(target, chunk_size=CHUNK)
                            append_stream(out, chunks, root=target.strip("/"))
                    raw.flush()
                    os.fsync(raw.fileno())
                progress("snapshot", writer.size, writer.size)
                info = SnapshotInfo(sid, name, stamp, writer.size, writer.sha256.hexdigest())
                (tmp / "agent.yaml").write_text(yaml.safe_dump(manifest_of(agent), sort_keys=False))
                (tmp / "meta.json").write_text(json.dumps(info.public(), indent=1))
                os.rename(tmp, self.root / name / sid)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._retain(name)
        return info

    def _retain(self, agent: str) -> None:
        keep = self.settings.snapshot_retention
        if keep > 0:
            for old in self.list(agent)[keep:]:
                shutil.rmtree(self.path(agent, old.id), ignore_errors=True)

    @contextlib.contextmanager
    def _source(self, key: str) -> Iterator[Any]:
        """A container to read the volumes from: the agent's own, paused if it runs, else a helper."""
        container = self._container(key)
        if container is not None:
            paused = False
            if container.status == "running":
                container.pause()
                paused = True
            try:
                yield container
            finally:
                if paused:
                    container.reload()
                    if container.status == "paused":
                        container.unpause()
            return
        volumes = self._existing_volumes(key)
        if volumes is None:
            raise SnapshotConflict(f"agent {key} has no container and no volumes yet: nothing to snapshot")
        helper = self._helper(volumes, start=False)
        try:
            yield helper
        finally:
            helper.remove(force=True)

    # ---- restore, clone, import --------------------------------------------------------------------

    def restore(
        self, agent: str, sid: str, namespace: str = "default", progress: Progress = no_progress
    ) -> SnapshotInfo:
        """Replace the agent's volumes with the snapshot's and bring it back to how it was running."""
        info = self.get(agent, sid)
        data = self.path(agent, sid) / "data.tar"
        with self._locked(agent):
            verify_data_tar(data, info.sha256, progress)
            self.fill_volumes(f"{namespace}/{agent}", data, progress)
        return info

    def fill_volumes(self, key: str, data: Path, progress: Progress = no_progress) -> None:
        """Make the agent's /data and /workspace hold exactly the (already verified) tar's content."""
        container: Any = self._container(key)
        state = container.status if container is not None else "absent"
        volumes = self._volumes_of(container) if container is not None else self._ensure_volumes(key)
        if state == "running":
            container.pause()
        try:
            helper = self._helper(volumes, start=True)
            try:
                if podman.is_podman(self.client):
                    # Podman's copy into "/" does not descend into volume mounts: one copy per volume.
                    for target in TARGETS:
                        with tempfile.TemporaryDirectory(prefix="clawpen-restore-") as tmp:
                            part = _subtree(data, target.strip("/"), Path(tmp) / "part.tar")
                            helper.put_archive(target, _upload(part, progress))
                else:
                    helper.put_archive("/", _upload(data, progress))
            finally:
                helper.remove(force=True)
        except BaseException:
            if state == "running":
                container.unpause()
            raise
        if state == "running":
            # Killed while still frozen: a graceful stop could flush the agent's stale in-memory state over
            # the restored files. It starts again fresh and reloads its state from them.
            started_before = container.attrs["State"].get("StartedAt")
            container.kill()
            container.reload()
            if container.status == "paused":  # Podman: a frozen process gets the SIGKILL once thawed
                with contextlib.suppress(docker.errors.APIError):
                    container.unpause()
            # Polled rather than `wait`ed: under a restart policy Podman's wait may never see the exit.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                container.reload()
                state = container.attrs["State"]
                if not state.get("Running") or state.get("StartedAt") != started_before:
                    break
                time.sleep(0.05)
            try:
                container.start()
            except docker.errors.APIError:
                container.reload()  # its restart policy may have started it already
                if container.status not in ("running", "restarting"):
                    raise

    def clone(self, agent: str, sid: str, new_name: str, progress: Progress = no_progress) -> Agent:
        """Fill a new agent's volumes from a snapshot; returns its manifest (the caller stores it)."""
        check_agent_name(new_name)
        info = self.get(agent, sid)
        source = self.spec(agent, sid)
        data = self.path(agent, sid) / "data.tar"
        verify_data_tar(data, info.sha256, progress)
        clone = renamed(source, new_name)
        with self._locked(new_name):
            self.fill_volumes(f"{clone.metadata.namespace}/{new_name}", data, progress)
        return clone

    # ---- docker plumbing ---------------------------------------------------------------------------

    def path(self, agent: str, sid: str) -> Path:
        """The snapshot's directory (names checked, so never outside <home>/snapshots)."""
        return self.root / check_agent_name(agent) / _check_id(sid)

    @contextlib.contextmanager
    def _locked(self, agent: str) -> Iterator[None]:
        folder = self.root / check_agent_name(agent)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _container(self, key: str) -> Any | None:
        try:
            container = self.client.containers.get(container_name(self.settings.instance, key))
        except docker.errors.NotFound:
            return None
        if container.labels.get(LABEL_INSTANCE) != self.settings.instance:
            raise SnapshotConflict(
                f"container {container.name} is not owned by Claw Pen instance {self.settings.instance}"
            )
        return container

    @staticmethod
    def _volumes_of(container: Any) -> dict[str, str]:
        found = {m["Destination"]: m["Name"] for m in container.attrs.get("Mounts", []) if m.get("Type") == "volume"}
        missing = [t for t in TARGETS if t not in found]
        if missing:
            raise SnapshotConflict(f"container {container.name} has no volume at {', '.join(missing)}")
        return {t: found[t] for t in TARGETS}

    def _existing_volumes(self, key: str) -> dict[str, str] | None:
        names = agent_volumes(self.settings.ensure_home(), key, volume_names(self.settings.instance, key))
        for volume in names.values():
            try:
                self.client.volumes.get(volume)
            except docker.errors.NotFound:
                return None
        return names

    def _ensure_volumes(self, key: str) -> dict[str, str]:
        namespace, _, name = key.partition("/")
        labels = {
            LABEL_MANAGED: MANAGED_BY,
            LABEL_INSTANCE: self.settings.instance,
            LABEL_KIND: "Agent",
            LABEL_NAMESPACE: namespace,
            LABEL_NAME: name,
        }
        names = agent_volumes(self.settings.ensure_home(), key, volume_names(self.settings.instance, key))
        for volume in names.values():
            try:
                self.client.volumes.get(volume)
            except docker.errors.NotFound:
                self.client.volumes.create(volume, labels=labels)
        return names

    def _helper(self, volumes: dict[str, str], *, start: bool) -> Any:
        """A container from the agent image with the volumes mounted; when started, it empties them."""
        try:
            image = find_image(self.client, self.settings.image)
        except docker.errors.ImageNotFound:
            raise SnapshotConflict(
                f"image {self.settings.image!r} is not present locally; build it with `clawpen image build`"
            ) from None
        helper = self.client.containers.create(
            image.id,
            entrypoint=["python3", "-c", _WIPE],
            command=[],
            user=f"{AGENT_UID}:{AGENT_UID}",
            network_mode="none",
            ulimits=podman.ulimits(self.client),
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            volumes={volume: {"bind": target, "mode": "rw"} for target, volume in volumes.items()},
            labels={LABEL_MANAGED: MANAGED_BY, LABEL_INSTANCE: self.settings.instance, LABEL_ROLE: "snapshot-helper"},
            name=f"clawpen_{self.settings.instance}_snapshot_{pysecrets.token_hex(4)}",
        )
        if start:
            try:
                helper.start()
                result = helper.wait(timeout=600)
                if result.get("StatusCode") != 0:
                    tail = helper.logs(tail=5).decode(errors="replace").strip().splitlines()
                    raise SnapshotError(f"could not empty the volumes: {tail[-1] if tail else 'helper failed'}")
            except BaseException:
                helper.remove(force=True)
                raise
        return helper


def _subtree(data: Path, root: str, out: Path) -> Path:
    """The entries of the (verified) snapshot tar under `root`/, renamed relative to it."""
    with tarfile.open(data, "r|") as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if member.name == root or not member.name.startswith(root + "/"):
                continue
            member.name = member.name[len(root) + 1 :]
            if member.islnk():
                if not member.linkname.startswith(root + "/"):
                    continue
                member.linkname = member.linkname[len(root) + 1 :]
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
    return out


def _upload(data: Path, progress: Progress) -> Iterator[bytes]:
    total, done = data.stat().st_size, 0
    with data.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            done += len(chunk)
            if done % (8 * CHUNK) < CHUNK or done == total:
                progress("restore", done, total)
            yield chunk


def renamed(agent: Agent, name: str) -> Agent:
    doc = manifest_of(agent)
    doc["metadata"]["name"] = check_agent_name(name)
    parsed = parse_resource(doc)
    assert isinstance(parsed, Agent)
    return parsed
