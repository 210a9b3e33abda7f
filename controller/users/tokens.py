"""API tokens for scripts, CI and GitOps: `cpt_<random>`, shown once, stored only as a SHA-256 hash.

A token acts for its owner and is capped by the owner's rights *at the time of each call* (the role
is the lower of the two, the projects the intersection), so demoting or disabling the owner
narrows or stops the token at once. A fast hash is right here (unlike passwords): the token has
256 bits of entropy, so there is nothing to brute-force, and every request must look it up.

Last-used times are kept in memory and written at most once a minute per token, so a busy CI job
does not turn every request into a file write.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from controller.store.base import NotFound
from controller.store.fileio import atomic_write, exclusive_lock

PREFIX = "cpt_"
LAST_USED_FLUSH = 60.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(BaseModel):
    id: str
    name: str
    owner: str
    role: str
    projects: list[str]
    hash: str
    created: float = Field(default_factory=time.time)
    expires_at: float | None = None
    last_used: float | None = None

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"hash"})


class ApiTokenStore:
    def __init__(self, home: Path, clock: Callable[[], float] = time.time):
        self.path = home / "auth" / "api-tokens.json"
        self._lock_path = home / "auth" / ".api-tokens.lock"
        self._mutex = threading.Lock()
        self._clock = clock
        self._seen: tuple[int, int] | None = None
        self._by_hash: dict[str, ApiToken] = {}
        self._flushed: dict[str, float] = {}

    def _refresh(self) -> dict[str, ApiToken]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._by_hash = None, {}
            return self._by_hash
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            raw = json.loads(self.path.read_text() or "{}")
            loaded = [ApiToken.model_validate(t) for t in raw.get("tokens", [])]
            memory = {t.hash: t.last_used for t in self._by_hash.values()}
            for t in loaded:  # keep newer in-memory last-used stamps across reloads
                t.last_used = max(filter(None, (t.last_used, memory.get(t.hash))), default=None)
            self._by_hash = {t.hash: t for t in loaded}
            self._seen = stamp
        return self._by_hash

    def _save(self, tokens: list[ApiToken]) -> None:
        body = {"tokens": [t.model_dump() for t in tokens]}
        atomic_write(self.path, json.dumps(body, indent=1).encode(), mode=0o600)
        self._seen = None

    def _locked(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return exclusive_lock(self._lock_path)

    def create(
        self, name: str, owner: str, role: str, projects: list[str], expires_in: int | None
    ) -> tuple[ApiToken, str]:
        """The new token and its value (the only time the value exists outside the caller)."""
        value = PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        token = ApiToken(
            id=secrets.token_hex(6),
            name=name,
            owner=owner,
            role=role,
            projects=sorted(set(projects)),
            hash=token_hash(value),
            created=now,
            expires_at=now + expires_in if expires_in else None,
        )
        with self._mutex, self._locked():
            self._seen = None
            tokens = list(self._refresh().values())
            tokens.append(token)
            self._save(tokens)
        return token, value

    def lookup(self, value: str) -> ApiToken | None:
        """The live token for this value (None when unknown or expired); notes its use."""
        token = self._refresh().get(token_hash(value))
        if token is None:
            return None
        now = self._clock()
        if token.expires_at is not None and now >= token.expires_at:
            return None
        token.last_used = now
        if now - self._flushed.get(token.id, 0.0) >= LAST_USED_FLUSH:
            self._flushed[token.id] = now
            self.flush()
        return token

    def flush(self) -> None:
        """Write the in-memory last-used times."""
        with self._mutex, self._locked():
            memory = {t.id: t.last_used for t in self._by_hash.values()}
            self._seen = None
            tokens = list(self._refresh().values())
            for t in tokens:
                if memory.get(t.id) and (t.last_used or 0) < (memory[t.id] or 0):
                    t.last_used = memory[t.id]
            self._save(tokens)

    def list(self, owner: str | None = None) -> list[ApiToken]:
        tokens = self._refresh().values()
        return sorted((t for t in tokens if owner is None or t.owner == owner), key=lambda t: (t.owner, t.name))

    def get(self, token_id: str) -> ApiToken:
        for t in self._refresh().values():
            if t.id == token_id:
                return t
        raise NotFound(f"token {token_id!r} not found")

    def revoke(self, token_id: str) -> None:
        with self._mutex, self._locked():
            self._seen = None
            tokens = list(self._refresh().values())
            kept = [t for t in tokens if t.id != token_id]
            if len(kept) == len(tokens):
                raise NotFound(f"token {token_id!r} not found")
            self._save(kept)

    def revoke_owner(self, owner: str) -> int:
        with self._mutex, self._locked():
            self._seen = None
            tokens = list(self._refresh().values())
            kept = [t for t in tokens if t.owner != owner]
            if len(kept) != len(tokens):
                self._save(kept)
            return len(tokens) - len(kept)
