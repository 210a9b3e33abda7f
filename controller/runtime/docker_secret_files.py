"""Secrets as files for DockerRuntime: on tmpfs, bind-mounted read-only at /run/secrets.

Secrets reach the agent as files on tmpfs (never on disk, never in `docker inspect`); only a secret
the user explicitly marks `as_env` becomes an env var (docker_apply). On a remote engine (split
mode, see controller.runtime.engine) the files travel over the engine API into a per-agent volume
instead (controller.runtime.docker_secret_volume). The warm pool writes claimed agents' files
through `write_secret_files` too, so the modes and ownership rules live here once.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from docker.types import Mount as DockerMount

from controller.plan import LABEL_PLAN_HASH, WorkloadPlan
from controller.runtime.base import RuntimeError_
from controller.runtime.docker_base import DockerBase
from controller.runtime.docker_names import container_name, secrets_dir
from controller.runtime.docker_secret_volume import fill_secret_volume, remove_secret_volume

SECRETS_TARGET = "/run/secrets"
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")


def _uid_gid(user: str) -> tuple[int, int] | None:
    uid, _, gid = user.partition(":")
    if uid.isdigit():
        return int(uid), int(gid) if gid.isdigit() else int(uid)
    return None


class DockerSecretFiles(DockerBase):
    """Where an agent's secret files are written, mounted and removed."""

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
