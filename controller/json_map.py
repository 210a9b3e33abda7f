"""Small JSON maps kept on disk: read one (missing or corrupt counts as empty) and save one atomically.

The warm pool's claim book and the Docker runtime's host-port registry each remember a little state
across controller restarts in a JSON object file in the controller's home. Both want the same rules:
a file that is missing, unreadable or not a JSON object is treated as empty (the state is a cache of
decisions the controller can make again, so a damaged file must not stop it), and a save replaces the
file whole (temp file + rename), so a crash mid-write never leaves half a map behind. One reader and
one writer keep those rules in one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controller.store.fileio import atomic_write


def read_json_map(path: Path) -> dict[str, Any]:
    """The JSON object stored at `path`; {} when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(key): value for key, value in data.items()} if isinstance(data, dict) else {}


def save_json_map(path: Path, data: dict[str, Any], *, indent: int | None = None) -> None:
    """Replace `path` with `data` as JSON (keys sorted), creating its directory (0700); file mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(data, indent=indent, sort_keys=True).encode(), 0o600)
