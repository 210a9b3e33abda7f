"""Users: name, role, project grants, an Argon2id password hash (or none, for SSO users), enabled flag.

Kept as one JSON file (`$CLAWPEN_HOME/auth/users.json`, mode 0600) written atomically under the
same kind of flock the file store uses, so the CLI and a running gateway can both edit it. Every
user carries a `resource_version`; an edit that names a stale one is a Conflict (409), and edits
re-read the file under the lock, so two concurrent edits never lose one another.

The `epoch` is a random stamp copied into every token minted for the user; changing the password,
disabling the user or an admin's "log out everywhere" makes a new epoch, which ends every session
at once. The built-in admin (the `admin.argon2` password of the first wave) is not in this file: it
is presented as the user `admin` by the gateway and cannot be deleted or demoted.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from controller.store.base import Conflict, NotFound, StoreError
from controller.store.fileio import atomic_write, exclusive_lock

ADMIN_NAME = "admin"
NAME_RULE = re.compile(r"^[a-z0-9]([a-z0-9._@-]{0,62}[a-z0-9])?$")
ROLES = ("admin", "operator", "viewer")


class InvalidUser(StoreError):
    status = 422


class User(BaseModel):
    name: str
    role: str = "viewer"
    projects: list[str] = Field(default_factory=lambda: ["*"])
    enabled: bool = True
    password_hash: str | None = None
    source: str = "local"  # local | oidc
    epoch: str = Field(default_factory=lambda: secrets.token_hex(8))
    resource_version: int = 1
    created: float = Field(default_factory=time.time)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RULE.match(v):
            raise ValueError("name must be 1-64 of a-z 0-9 . _ @ - (lowercase), starting and ending alphanumeric")
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        return v

    @field_validator("projects")
    @classmethod
    def _projects(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p or len(p) > 128:
                raise ValueError("each project is 1-128 characters ('*' = all)")
        return sorted(set(v))

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"password_hash", "epoch"}) | {"has_password": self.password_hash is not None}


class UserStore:
    """All users in memory, reloaded when the file changes (one stat() per lookup)."""

    def __init__(self, home: Path):
        self.path = home / "auth" / "users.json"
        self._lock_path = home / "auth" / ".users.lock"
        self._mutex = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._users: dict[str, User] = {}

    # ---- reading ------------------------------------------------------------------------------
    def _refresh(self) -> dict[str, User]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._users = None, {}
            return self._users
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            raw = json.loads(self.path.read_text() or "{}")
            self._users = {n: User.model_validate(u) for n, u in raw.get("users", {}).items()}
            self._seen = stamp
        return self._users

    def get(self, name: str) -> User | None:
        return self._refresh().get(name)

    def list(self) -> list[User]:
        return sorted(self._refresh().values(), key=lambda u: u.name)

    # ---- writing ------------------------------------------------------------------------------
    def _write(self, users: dict[str, User]) -> None:
        body = {"users": {n: u.model_dump() for n, u in sorted(users.items())}}
        atomic_write(self.path, json.dumps(body, indent=1).encode(), mode=0o600)
        self._seen = None

    def _edit(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return _Edit(self)

    def create(self, user: User) -> User:
        if user.name == ADMIN_NAME:
            raise Conflict("the user 'admin' is built in (its password: `clawpen admin set-password`)")
        with self._edit() as users:
            if user.name in users:
                raise Conflict(f"user {user.name!r} already exists")
            users[user.name] = user
        return user

    def update(self, name: str, changes: dict[str, Any], resource_version: int | None = None) -> User:
        """Apply `changes` (role, projects, enabled, password_hash); a new epoch when credentials change."""
        with self._edit() as users:
            current = users.get(name)
            if current is None:
                raise NotFound(f"user {name!r} not found")
            if resource_version is not None and resource_version != current.resource_version:
                raise Conflict(
                    f"user {name!r} changed since you read it (resource_version {current.resource_version}, "
                    f"you sent {resource_version}); read it again and retry"
                )
            data = current.model_dump() | changes
            if "password_hash" in changes or changes.get("enabled") is False or changes.get("new_epoch"):
                data["epoch"] = secrets.token_hex(8)
            data.pop("new_epoch", None)
            data["resource_version"] = current.resource_version + 1
            try:
                users[name] = User.model_validate(data)
            except ValueError as err:
                raise InvalidUser(f"invalid user: {err}") from None
            return users[name]

    def delete(self, name: str) -> None:
        with self._edit() as users:
            if users.pop(name, None) is None:
                raise NotFound(f"user {name!r} not found")


class _Edit:
    """Read-modify-write under the process mutex and the cross-process flock."""

    def __init__(self, store: UserStore):
        self.store = store
        self.users: dict[str, User] = {}

    def __enter__(self) -> dict[str, User]:
        self.store._mutex.acquire()
        self._flock = exclusive_lock(self.store._lock_path)
        self._flock.__enter__()
        self.store._seen = None  # re-read: another process may have written since we looked
        self.users = dict(self.store._refresh())
        return self.users

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            if exc_type is None:
                self.store._write(self.users)
        finally:
            self._flock.__exit__(None, None, None)
            self.store._mutex.release()
