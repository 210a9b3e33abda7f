"""Suspend idle agents and wake them on the next chat message (spec.idle.suspendAfter).

Why `docker pause` and not `docker stop`: bench/wake.py measures both on the same agent. Unpausing
thaws the cgroup in tens of milliseconds and keeps everything the agent had in memory (sessions,
open files, warm caches); a stopped container must boot the program again and wait for /healthz.
Pausing is safe for our agent program because the controller only pauses an agent nobody is
talking to, and nothing runs inside the agent between chat messages.

Who records what: the gateway touches one small file per agent,
`$CLAWPEN_HOME/.state/activity/<namespace>/<name>` (its mtime is the last chat activity), on every
chat message (WebSocket and team chat), before it looks at the container. The controller reads the
mtime when it reconciles and pauses an agent whose last activity (or start) is older than
suspendAfter. The race between a pause and a message is closed by ordering, not by locks:

  gateway:    touch → inspect the container → unpause if paused → relay
  controller: read activity → pause → read activity again → unpause if it moved

A touch before the pause is seen by the controller's second read; a touch after the pause is
followed by the gateway's inspect, which sees the pause. Either way somebody unpauses.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> timedelta:
    """'15m', '1h30m', '45s', '0.5s' → timedelta. ValueError on anything else (or on zero)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration like 15m, 1h30m or 45s")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    value = timedelta(hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0))
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


@runtime_checkable
class Suspendable(Protocol):
    """A runtime that can freeze and thaw a workload in place (Docker: pause/unpause)."""

    async def pause(self, key: str) -> None: ...

    async def unpause(self, key: str) -> None: ...


class Activity:
    """Last chat activity per agent, as file mtimes under <home>/.state/activity (cross-process)."""

    def __init__(self, home: Path):
        self.root = home / ".state" / "activity"

    def _path(self, key: str) -> Path:
        namespace, _, name = key.partition("/")
        if not name or "/" in name or name.startswith(".") or namespace.startswith("."):
            raise ValueError(f"bad agent key {key!r}")
        return self.root / namespace / name

    def touch(self, key: str) -> None:
        path = self._path(key)
        try:
            os.utime(path)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            os.utime(path)

    def last(self, key: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(self._path(key).stat().st_mtime, UTC)
        except (FileNotFoundError, ValueError):
            return None

    def forget(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except ValueError:
            pass


def idle_since(*times: datetime | None) -> datetime | None:
    """The latest of the given moments (activity, container start, Ready transition)."""
    known = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times if t is not None]
    return max(known) if known else None
