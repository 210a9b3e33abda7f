"""Who is running for this installation: the controller and the gateway leave a record in the home.

Why: a file-store installation has no API server to ask, and status written by a controller that
has since stopped looks just as current as a live one. `clawpen up`, `clawpen controller` and
`clawpen gateway` each write `<home>/run/<role>.json` (pid, host, address, start time) while they
run and remove it when they stop; `clawpen status`, `get` and `describe` read it to say whether a
controller is up (a record whose pid is gone is stale, e.g. after a kill -9). This is presence,
not a lease: it does not stop two controllers from running (the controller's lease does that).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from controller.store.fileio import atomic_write

Role = Literal["controller", "gateway"]


@dataclass(frozen=True)
class Presence:
    role: str
    pid: int
    hostname: str
    started: str
    url: str | None = None  # the gateway's base URL

    @property
    def alive(self) -> bool:
        """True when the recorded process still exists (only knowable on the same host)."""
        if self.hostname != socket.gethostname():
            return True  # another machine sharing the home (NFS): trust the record
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _path(home: Path, role: str) -> Path:
    return home / "run" / f"{role}.json"


def read(home: Path, role: Role) -> Presence | None:
    """The live record for `role`, or None (absent, unreadable or stale)."""
    try:
        data = json.loads(_path(home, role).read_text())
        record = Presence(**data)
    except (OSError, ValueError, TypeError):
        return None
    return record if record.alive else None


@contextlib.contextmanager
def announce(home: Path, role: Role, url: str | None = None) -> Iterator[Presence]:
    """Record this process as `role` for as long as the block runs."""
    record = Presence(
        role=role,
        pid=os.getpid(),
        hostname=socket.gethostname(),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        url=url,
    )
    path = _path(home, role)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(asdict(record)).encode(), mode=0o600)
    try:
        yield record
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()


def no_controller_warning(home: Path, store: str) -> str | None:
    """A one-line warning for get/describe when no controller runs for a file-store home."""
    if store != "files" or read(home, "controller") is not None:
        return None
    return (
        f"warning: no controller is running for {home} (start one with `clawpen up`); "
        "status below may be stale"
    )
