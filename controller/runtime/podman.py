"""Where Podman's Docker-compatible API differs from Docker's, in one place.

Images: Podman keeps images that were imported or built without a registry as `localhost/<name>`, and its
Docker-compatible API looks an unqualified name up as `docker.io/<name>`: the image we just made
then answers 404. So lookups try the name as given, then the `localhost/` spelling. Containers are
created from the resolved image (its id), which both engines accept.
"""

from __future__ import annotations

from typing import Any

import docker.errors
import docker.types

# Podman raises nofile/nproc to 1048576 in every container, which fails ("error setting rlimit")
# wherever the engine's own hard limits are lower; explicit limits within common hard limits work
# everywhere. Docker passes its daemon's limits through, so nothing is set there.
PODMAN_RLIMIT = 16384
_PODMAN: dict[int, bool] = {}


def is_podman(client: Any) -> bool:
    key = id(client)
    if key not in _PODMAN:
        components = client.version().get("Components") or []
        _PODMAN[key] = any("podman" in str(c.get("Name", "")).lower() for c in components)
    return _PODMAN[key]


def ulimits(client: Any) -> list[docker.types.Ulimit] | None:
    """Resource limits to pass on container create (None: the engine's defaults are fine)."""
    if not is_podman(client):
        return None
    return [docker.types.Ulimit(name=n, soft=PODMAN_RLIMIT, hard=PODMAN_RLIMIT) for n in ("nofile", "nproc")]


def _qualified(ref: str) -> bool:
    first = ref.split("/", 1)[0]
    return "/" in ref and ("." in first or ":" in first or first == "localhost")


def find_image(client: Any, ref: str) -> Any:
    """The image `ref` names; raises docker.errors.ImageNotFound when neither spelling exists."""
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        if ref.startswith("sha256:") or _qualified(ref):
            raise
    return client.images.get(f"localhost/{ref}")
