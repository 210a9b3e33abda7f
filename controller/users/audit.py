"""The audit log: one JSON line per mutating request and per login attempt, append-only, size-rotated.

A line is `{time, user, source, method, route, object, status}` -- the route *template*
(`/api/agents/{id}`) and the object's name, never a body, a query string or a header, so a secret
value, a password or a token cannot end up in it by construction. Lines are appended with O_APPEND
(one write() each, so concurrent writers never interleave) to `$CLAWPEN_HOME/audit/audit.jsonl`;
past `max_bytes` the file is renamed `audit-<ns>.jsonl` and the oldest beyond `keep` are removed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CURRENT = "audit.jsonl"
MAX_BYTES = 10 * 1024 * 1024
KEEP = 10


class AuditLog:
    def __init__(self, home: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP):
        self.dir = home / "audit"
        self.max_bytes = max_bytes
        self.keep = keep
        self._mutex = threading.Lock()

    def record(
        self, *, user: str | None, source: str, method: str, route: str, object: str | None, status: int
    ) -> None:
        entry = {
            "time": round(time.time(), 3),
            "user": user,
            "source": source,
            "method": method,
            "route": route,
            "object": object,
            "status": status,
        }
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._mutex:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.dir / CURRENT
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size >= self.max_bytes:
                self._rotate(path)

    def _rotate(self, path: Path) -> None:
        os.replace(path, self.dir / f"audit-{time.time_ns()}.jsonl")
        old = sorted(self.dir.glob("audit-*.jsonl"))
        for stale in old[: max(0, len(old) - self.keep)]:
            stale.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """Oldest first."""
        rotated = sorted(self.dir.glob("audit-*.jsonl"))
        current = self.dir / CURRENT
        return rotated + ([current] if current.exists() else [])

    def entries(self) -> Iterator[dict[str, Any]]:
        for path in self.files():
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue  # rotated away while we read
            for line in text.splitlines():
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def query(self, user: str | None = None, since: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` entries matching, oldest first."""
        out = [
            e
            for e in self.entries()
            if (user is None or e.get("user") == user or str(e.get("user", "")).startswith(f"{user} "))
            and (since is None or float(e.get("time", 0)) >= since)
        ]
        return out[-limit:]
