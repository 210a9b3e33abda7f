"""An agent's named volumes after the agent: listing them, and removing them despite a racing controller.

`delete --volumes` used to remove the container, then the volumes, once; when the controller was
still replacing or removing that agent's container, Docker answered "volume is in use" and the
volumes stayed behind for good, with no command to find or remove them later. Removal now retries
(removing any container of that agent again first) for a while, and `clawpen volumes list|prune`
finds volumes whose agent is gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from controller.plan import LABEL_INSTANCE, LABEL_MANAGED, LABEL_NAME, LABEL_NAMESPACE, MANAGED_BY
from controller.runtime.base import RuntimeError_

REMOVE_ATTEMPTS = 40
REMOVE_PAUSE = 0.25  # seconds between attempts: ~10 s for the controller's replace or removal to finish


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    key: str  # namespace/name of the agent the volume belongs to
    created: str


def list_agent_volumes(client: docker.DockerClient, instance: str) -> list[VolumeInfo]:
    filters = {"label": [f"{LABEL_MANAGED}={MANAGED_BY}", f"{LABEL_INSTANCE}={instance}"]}
    out = []
    for volume in client.volumes.list(filters=filters):
        labels = volume.attrs.get("Labels") or {}
        key = f"{labels.get(LABEL_NAMESPACE, '')}/{labels.get(LABEL_NAME, '')}"
        out.append(VolumeInfo(volume.name, key, str(volume.attrs.get("CreatedAt", ""))))
    return sorted(out, key=lambda v: v.name)


def remove_volumes(client: docker.DockerClient, names: list[str], containers: Any) -> list[str]:
    """Remove `names`, retrying while a container still holds one; returns those removed.

    `containers()` removes whatever container of the agent exists (the controller may have been
    recreating it while the spec was deleted). Raises RuntimeError_ naming what stayed.
    """
    left = list(names)
    removed: list[str] = []
    last = ""
    for _ in range(REMOVE_ATTEMPTS):
        containers()
        for name in list(left):
            try:
                client.volumes.get(name).remove(force=True)
                removed.append(name)
                left.remove(name)
            except docker.errors.NotFound:
                left.remove(name)
            except docker.errors.APIError as err:
                last = str(err.explanation or err).splitlines()[0]
        if not left:
            return removed
        time.sleep(REMOVE_PAUSE)
    raise RuntimeError_(f"volumes {', '.join(left)} are still in use ({last}); try again", reason="VolumeInUse")
