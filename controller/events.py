"""A short, per-agent history of what the controller did and why (shown by `clawpen describe`).

Kubernetes keeps Events beside objects; on one machine a bounded JSON-lines file per agent does the
same job without a server. Only transitions are recorded (an action taken, or a new phase/reason),
so a steady state writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from controller.store.fileio import atomic_write

KEEP = 50


@dataclass(frozen=True)
class Event:
    time: str
    type: str  # Normal | Warning
    reason: str
    message: str


class EventLog:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        namespace, _, name = key.partition("/")
        return self.root / namespace / f"{name}.jsonl"

    def record(self, key: str, event: Event) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps(asdict(event)) + "\n")
        if path.stat().st_size > KEEP * 400:
            self._trim(path)

    def recent(self, key: str, limit: int = 10) -> list[Event]:
        path = self._path(key)
        if not path.exists():
            return []
        events = []
        for line in path.read_text().splitlines()[-limit:]:
            try:
                events.append(Event(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a torn line from a crash: skip it
        return events

    def forget(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _trim(self, path: Path) -> None:
        lines = path.read_text().splitlines()[-KEEP:]
        atomic_write(path, ("\n".join(lines) + "\n").encode())
