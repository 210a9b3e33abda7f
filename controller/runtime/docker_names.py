"""How the Docker runtime names what it makes: containers, networks, volumes and secret directories.

Every object is named from the installation's `instance` and the agent's key, so several
installations (a user's and a test run's) share one engine without touching each other's objects.
The names are a contract beyond the runtime (snapshots, tests and the warm pool find objects by
them), so they live in one small module that imports nothing of the runtime's.
"""

from __future__ import annotations

import os
from pathlib import Path


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

