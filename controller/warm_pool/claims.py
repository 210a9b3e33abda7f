"""The claim book: which pool container, volumes and secret directory an agent took.

Docker cannot relabel a container, so a claimed pool container keeps its pool labels for life and
its volumes keep their pool names. The runtime renames the container to the agent's own name (so
every lookup by name, logs and stats included, just works) and writes down here what it cannot
express in labels: the plan hash the container now serves, the volumes that are now the agent's,
and the secret directory mounted into it. The file lives in the controller's home, so a restarted
controller adopts a claimed container (same hash: nothing recreated) instead of replacing it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from controller.json_map import read_json_map, save_json_map

CLAIMS_FILE = "warm-pool-claims.json"  # in $CLAWPEN_HOME


@dataclass(frozen=True)
class Claim:
    key: str  # namespace/name of the agent
    volumes: dict[str, str]  # mount target → volume name (the agent's from now on)
    container: str | None = None  # container id while the pool container serves the agent
    plan_hash: str | None = None  # the plan it was configured for
    secrets_dir: str | None = None  # host directory bind-mounted at /run/secrets (local engine)
    port: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


class ClaimBook:
    """key → Claim, in memory and in a small JSON file (None: memory only, for tests)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._claims: dict[str, Claim] = self._load()

    def _load(self) -> dict[str, Claim]:
        if self.path is None:
            return {}
        out: dict[str, Claim] = {}
        for key, raw in read_json_map(self.path).items():
            with contextlib.suppress(TypeError, ValueError):
                out[key] = Claim(**raw)
        return out

    def _save(self) -> None:
        if self.path is not None:
            save_json_map(self.path, {k: asdict(c) for k, c in sorted(self._claims.items())}, indent=1)

    def get(self, key: str) -> Claim | None:
        with self._lock:
            return self._claims.get(key)

    def all(self) -> list[Claim]:
        with self._lock:
            return list(self._claims.values())

    def by_container(self, container_id: str) -> Claim | None:
        with self._lock:
            return next((c for c in self._claims.values() if c.container and c.container == container_id), None)

    def put(self, claim: Claim) -> None:
        with self._lock:
            self._claims[claim.key] = claim
            self._save()

    def release_container(self, key: str) -> None:
        """The claimed container is gone (replaced by one of the agent's own): keep the volumes."""
        with self._lock:
            claim = self._claims.get(key)
            if claim is not None and claim.container is not None:
                self._claims[key] = replace(claim, container=None, plan_hash=None, secrets_dir=None)
                self._save()

    def forget(self, key: str) -> None:
        with self._lock:
            if self._claims.pop(key, None) is not None:
                self._save()


def agent_volumes(home: Path, key: str, default: dict[str, str]) -> dict[str, str]:
    """The agent's volumes: a claimed pool container's (from the book in `home`), else `default`."""
    claim = ClaimBook(home / CLAIMS_FILE).get(key)
    return dict(claim.volumes) if claim is not None else default
