"""Examples a team learned from its users' answers to clarifying questions (`[router] learn = true`).

When the router asks "is this about receipts or payables?" and the user picks one, the original message
is a labelled example nobody had to write. With learning on, it is added to that intent's anchors for
the semantic router, so the same (or a similar) message routes without asking next time.

Why a file of its own under the store's state directory (`<home>/.state/teams-learned/<team>.json`), beside
the controller-owned status files: the team's TOML/YAML belongs to the user (or to git) and is never
rewritten by the gateway; deleting this file forgets what was learned. Bounded per intent (oldest
dropped), written atomically, one lock per process.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from controller.resources import Team
from controller.settings import Settings
from controller.store.fileio import atomic_write

MAX_PER_INTENT = 200
MAX_MESSAGE_CHARS = 1000


def learned_dir(settings: Settings) -> Path:
    return settings.home / ".state" / "teams-learned"


class LearnedExamples:
    """Per-team learned examples, read on demand (cached by file mtime) and appended to on a pick."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, dict[str, list[str]]]] = {}

    def path(self, team: Team) -> Path:
        return self.directory / f"{team.metadata.namespace}.{team.name}.json"

    def get(self, team: Team) -> dict[str, list[str]]:
        """Learned examples by intent, only for intents the team still has."""
        path = self.path(team)
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return {}
        with self._lock:
            cached = self._cache.get(str(path))
            if cached is None or cached[0] != mtime:
                try:
                    data = json.loads(path.read_text())
                except (OSError, ValueError):
                    data = {}
                examples = data.get("examples", {}) if isinstance(data, dict) else {}
                clean = {
                    str(k): [str(m) for m in v if isinstance(m, str)]
                    for k, v in examples.items() if isinstance(v, list)
                } if isinstance(examples, dict) else {}
                cached = (mtime, clean)
                self._cache[str(path)] = cached
        return {intent: msgs for intent, msgs in cached[1].items() if intent in team.spec.agents and msgs}

    def add(self, team: Team, intent: str, message: str) -> bool:
        """Remember `message` as an example of `intent`; False when learning is off or nothing changed."""
        text = " ".join(message.split())[:MAX_MESSAGE_CHARS]
        if not team.spec.router.learn or intent not in team.spec.agents or not text:
            return False
        current = self.get(team)
        examples = [m for m in current.get(intent, []) if m != text] + [text]
        current[intent] = examples[-MAX_PER_INTENT:]
        for other, msgs in current.items():  # a message belongs to one intent: the latest pick wins
            if other != intent and text in msgs:
                current[other] = [m for m in msgs if m != text]
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {"team": team.name, "examples": current}
        with self._lock:
            atomic_write(self.path(team), json.dumps(doc, indent=1, sort_keys=True).encode())
        return True
