"""Secret files for an engine on another machine: a per-agent volume filled through the engine.

Locally, secrets are files on the controller's tmpfs bind-mounted into the container (see
DockerRuntime). A remote engine cannot see the controller's files, so the values travel over the
engine API instead: a short-lived carrier container (created, never started, no network) mounts the
agent's secrets volume and receives a tar archive of the files (`put_archive`), owned by the agent's
uid with mode 0400; the agent mounts the volume read-only. The volume is recreated whenever the
container is (its plan hash covers the secrets' versions) and removed with the agent.

What this costs: the values rest on the engine machine's disk (a root-only Docker volume), not in
tmpfs. They still never appear in env, `docker inspect` or logs.
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any

import docker.errors

from controller.plan import LABEL_MANAGED, MANAGED_BY
from controller.runtime.podman import ulimits

HELPER_LABEL = "clawpen.dev/helper"
CARRIER_TARGET = "/clawpen-secrets"


def _archive(values: dict[str, bytes], uid: int, gid: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, value in sorted(values.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(value), 0o400, uid, gid, int(time.time())
            tar.addfile(info, io.BytesIO(value))
    return buffer.getvalue()


def fill_secret_volume(
    client: Any, volume: str, image: str, values: dict[str, bytes], owner: tuple[int, int], labels: dict[str, str]
) -> None:
    """Recreate `volume` holding exactly `values` (the caller made sure no container uses it)."""
    remove_secret_volume(client, volume)
    client.volumes.create(volume, labels=labels)
    carrier = client.containers.create(
        image=image,
        command=["true"],
        user="0:0",
        network_mode="none",
        ulimits=ulimits(client),
        labels={LABEL_MANAGED: MANAGED_BY, HELPER_LABEL: "secrets"},
        mounts=[docker.types.Mount(CARRIER_TARGET, volume, type="volume")],
    )
    try:
        if not carrier.put_archive(CARRIER_TARGET, _archive(values, *owner)):
            raise docker.errors.APIError(f"the engine refused the secret files for {volume}")
    finally:
        carrier.remove(force=True)


def remove_secret_volume(client: Any, volume: str) -> None:
    try:
        client.volumes.get(volume).remove(force=True)
    except docker.errors.NotFound:
        pass
