"""Find a local image by the name we gave it, on Docker and on Podman.

Podman keeps images that were imported or built without a registry as `localhost/<name>`, and its
Docker-compatible API looks an unqualified name up as `docker.io/<name>`: the image we just made
then answers 404. So lookups try the name as given, then the `localhost/` spelling. Containers are
created from the resolved image (its id), which both engines accept.
"""

from __future__ import annotations

from typing import Any

import docker.errors


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
