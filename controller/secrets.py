"""The secret store: values encrypted at rest, scoped to one agent or global.

The original kept API keys in plaintext and accepted `../` in their names. Here every value is
sealed with AES-256-GCM under one store key, with a fresh nonce per write and associated data that
binds the ciphertext to its scope, agent, name and version: a file copied from agent A's directory
into agent B's (or renamed) fails to decrypt instead of leaking A's key to B.

A secret's `version` is a random id drawn on every set, never a hash of the value, so the plan hash
(which covers versions) restarts the agents using a secret without revealing anything about it.

Layout under <home>:
    secret.key                  base64 of the 32-byte key (0600), unless CLAWPEN_SECRET_KEY is set
    secrets/key-id              which key sealed this directory (an HMAC of the key, not the key)
    secrets/global/NAME.secret  one JSON file per secret (0600): metadata + nonce + ciphertext
    secrets/agent/AGENT/NAME.secret

Writes are atomic (temp file + fsync + rename) and serialised across processes with a lock file,
so the CLI and a running gateway can both write. Rotation re-encrypts into a fresh directory and
swaps it in; a crash at any step leaves either the old or the new store, never a mixture
(controller.secret_files.recover_rotation finishes or undoes a half-done swap at the next start).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import json
import os
import re
import secrets as pysecrets
import shutil
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from controller.resources import DNS1123_LABEL, SECRET_NAME
from controller.secret_files import (
    decode_key,
    encode_key,
    key_id,
    locked,
    mkdir_private,
    recover_rotation,
)
from controller.store.fileio import atomic_write, fsync_dir

MAX_VALUE_BYTES = 64 * 1024
KEY_ENV = "CLAWPEN_SECRET_KEY"
FORMAT = 1
SUFFIX = ".secret"

Scope = Literal["agent", "global"]


class SecretError(Exception):
    """Base of secret-store errors; `status` is the HTTP status the gateway answers with.

    Messages name the secret and the rule, never a value.
    """

    status = 500


class SecretNotFound(SecretError, KeyError):
    status = 404

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "secret not found"


class InvalidSecret(SecretError):
    """A name or value that breaks a rule (HTTP 422); `field` says which ("name", "value", "agent")."""

    status = 422

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


class SecretKeyMismatch(SecretError):
    """The store was sealed with another key than the one we hold."""

    status = 500


class SecretCorrupt(SecretError):
    """A stored file that cannot be read or authenticated (tampered, truncated, moved)."""

    status = 500


@dataclass(frozen=True)
class SecretInfo:
    name: str
    scope: Scope
    agent: str | None
    version: str
    created_at: datetime
    updated_at: datetime
    size_bytes: int

    def public(self) -> dict[str, Any]:
        """The API/CLI form: metadata only."""
        return {
            "name": self.name,
            "scope": self.scope,
            "agent": self.agent,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "size_bytes": self.size_bytes,
        }


def check_name(name: str) -> str:
    if not isinstance(name, str) or not SECRET_NAME.match(name) or ".." in name or name == ".":
        raise InvalidSecret(
            f"invalid secret name {name[:80]!r}: secret names match [A-Za-z0-9_.-]{{1,64}} "
            "and are never '.' or contain '..'"
            if isinstance(name, str)
            else "secret name must be a string"
        )
    return name


def check_agent(agent: str) -> str:
    if not isinstance(agent, str) or not DNS1123_LABEL.match(agent):
        raise InvalidSecret(f"invalid agent name {str(agent)[:80]!r}: must be a DNS-1123 label", "agent")
    return agent


def check_value(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise InvalidSecret("secret value must be bytes", "value")
    if len(value) == 0:
        raise InvalidSecret("secret value must not be empty", "value")
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidSecret(f"secret value is {len(value)} bytes; the limit is {MAX_VALUE_BYTES} (64 KiB)", "value")
    return bytes(value)


def _aad(scope: str, agent: str | None, name: str, version: str) -> bytes:
    return f"clawpen.dev/secret/v{FORMAT}|{scope}|{agent or ''}|{name}|{version}".encode()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class SecretStore:
    """Encrypted, scoped secrets under <home>/secrets (see the module docstring for the layout)."""

    def __init__(self, home: Path, key: bytes | None = None):
        self.home = Path(home)
        self.dir = self.home / "secrets"
        self.key_file = self.home / "secret.key"
        mkdir_private(self.home)
        self._lock_path = self.home / "secrets.lock"
        with locked(self._lock_path):
            recover_rotation(self.home, self.dir, self.key_file)
            if key is not None:
                self._key, self._key_origin = self._check_key_bytes(key), "the key passed in"
            elif os.environ.get(KEY_ENV):
                self._key, self._key_origin = decode_key(os.environ[KEY_ENV], KEY_ENV), KEY_ENV
            else:
                self._key, self._key_origin = self._load_or_create_key_file(), str(self.key_file)
            mkdir_private(self.dir)
            if not (self.dir / "key-id").exists():
                atomic_write(self.dir / "key-id", key_id(self._key).encode())

    @classmethod
    def from_settings(cls, settings: Any) -> SecretStore:
        return cls(settings.ensure_home())

    @property
    def key_from_env(self) -> bool:
        return self._key_origin == KEY_ENV

    # ---- public API ----------------------------------------------------------------------------

    def set(self, name: str, value: bytes, agent: str | None = None) -> SecretInfo:
        check_name(name)
        value = check_value(value)
        scope, owner = self._scope(agent)
        with locked(self._lock_path):
            self._check_key()
            path = self._path(scope, owner, name)
            created = _now()
            if path.exists():
                with contextlib.suppress(SecretError):
                    created = self._info(path, scope, owner, name)[0].created_at
            info = SecretInfo(name, scope, owner, pysecrets.token_hex(8), created, _now(), len(value))
            mkdir_private(path.parent)
            atomic_write(path, self._seal(info, value, self._key))
            self._touch()
        return info

    def get(self, name: str, agent: str | None = None) -> bytes:
        check_name(name)
        scope, owner = self._scope(agent)
        info, doc = self._info(self._path(scope, owner, name), scope, owner, name)
        return self._open(info, doc)

    def info(self, name: str, agent: str | None = None) -> SecretInfo:
        check_name(name)
        scope, owner = self._scope(agent)
        return self._info(self._path(scope, owner, name), scope, owner, name)[0]

    def delete(self, name: str, agent: str | None = None) -> None:
        check_name(name)
        scope, owner = self._scope(agent)
        with locked(self._lock_path):
            path = self._path(scope, owner, name)
            try:
                path.unlink()
            except FileNotFoundError:
                raise SecretNotFound(f"secret {self._label(scope, owner, name)} not found") from None
            fsync_dir(path.parent)
            self._touch()

    def delete_agent(self, agent: str) -> int:
        """Remove every secret of one agent (when the agent is deleted); returns how many."""
        check_agent(agent)
        with locked(self._lock_path):
            folder = self.dir / "agent" / agent
            count = len(list(folder.glob(f"*{SUFFIX}"))) if folder.exists() else 0
            shutil.rmtree(folder, ignore_errors=True)
            if count:
                self._touch()
            return count

    def list(self, agent: str | None = None) -> builtins.list[SecretInfo]:
        """Secrets of exactly one scope (an agent's own, or the global ones), sorted by name."""
        scope, owner = self._scope(agent)
        folder = self.dir / "global" if scope == "global" else self.dir / "agent" / str(owner)
        return [self._info(p, scope, owner, p.name[: -len(SUFFIX)])[0] for p in self._files(folder)]

    def list_all(self) -> builtins.list[SecretInfo]:
        out = self.list()
        agents_dir = self.dir / "agent"
        if agents_dir.exists():
            for folder in sorted(agents_dir.iterdir()):
                if folder.is_dir() and DNS1123_LABEL.match(folder.name):
                    out.extend(self.list(folder.name))
        return out

    def resolve(self, agent: str, names: Iterable[str]) -> dict[str, SecretInfo]:
        """For each wanted name: the agent's own secret, else the global one; missing names are absent."""
        check_agent(agent)
        found: dict[str, SecretInfo] = {}
        for name in names:
            try:
                check_name(name)
            except InvalidSecret:
                continue  # a name no secret can have is simply missing (translate reports SecretMissing)
            for scope, owner in (("agent", agent), ("global", None)):
                path = self._path(scope, owner, name)  # type: ignore[arg-type]
                if path.exists():
                    with contextlib.suppress(SecretNotFound):
                        found[name] = self._info(path, scope, owner, name)[0]  # type: ignore[arg-type]
                        break
        return found

    def read(self, info: SecretInfo) -> bytes:
        """The value of a secret found by list/resolve; fails if it changed since (version differs)."""
        path = self._path(info.scope, info.agent, info.name)
        current, doc = self._info(path, info.scope, info.agent, info.name)
        if current.version != info.version:
            raise SecretNotFound(
                f"secret {self._label(info.scope, info.agent, info.name)} changed since it was resolved "
                f"(version {info.version} is now {current.version})"
            )
        return self._open(current, doc)

    def stamp(self) -> str:
        """Changes on every write: a cheap way for a controller to notice secret changes by polling."""
        try:
            return (self.dir / "changed").read_text()
        except FileNotFoundError:
            return ""

    async def changes(self, interval: float = 1.0) -> AsyncIterator[str]:
        """Yields the new stamp after each write by any process (a controller re-reconciles the agents
        that use secrets, so a changed secret restarts exactly those whose plan hash moved)."""
        last = self.stamp()
        while True:
            await asyncio.sleep(interval)
            current = self.stamp()
            if current != last:
                last = current
                yield current

    def rotate_key(self, new_key: bytes | None = None) -> None:
        """Re-encrypt every secret under a new key and swap the store in atomically."""
        new = self._check_key_bytes(new_key) if new_key is not None else AESGCM.generate_key(bit_length=256)
        with locked(self._lock_path):
            self._check_key()
            staging, previous = self.home / "secrets.next", self.home / "secrets.prev"
            shutil.rmtree(staging, ignore_errors=True)
            next_key = self.key_file.with_name("secret.key.next")
            if not self.key_from_env:
                atomic_write(next_key, encode_key(new).encode() + b"\n")
            for info in self.list_all():
                path = self._path(info.scope, info.agent, info.name)
                value = self._open(*self._info(path, info.scope, info.agent, info.name))
                target = staging / path.relative_to(self.dir)
                mkdir_private(target.parent)
                atomic_write(target, self._seal(info, value, new))
            mkdir_private(staging)
            atomic_write(staging / "changed", pysecrets.token_hex(8).encode())
            atomic_write(staging / "key-id", key_id(new).encode())  # last: marks staging complete
            os.replace(self.dir, previous)
            os.replace(staging, self.dir)
            fsync_dir(self.home)
            if not self.key_from_env:
                os.replace(next_key, self.key_file)
                fsync_dir(self.home)
            shutil.rmtree(previous, ignore_errors=True)
            self._key = new

    # ---- internals ------------------------------------------------------------------------------

    @staticmethod
    def _check_key_bytes(key: bytes) -> bytes:
        if not isinstance(key, bytes) or len(key) != 32:
            raise SecretError("the secret store key must be 32 bytes (AES-256)")
        return key

    def _load_or_create_key_file(self) -> bytes:
        if self.key_file.exists():
            mode = self.key_file.stat().st_mode & 0o777
            if mode & 0o077:
                raise SecretError(f"{self.key_file} is readable by others (mode {mode:o}); chmod 600 it")
            return decode_key(self.key_file.read_text(), str(self.key_file))
        if (self.dir / "key-id").exists() and any(self.dir.rglob(f"*{SUFFIX}")):
            raise SecretKeyMismatch(
                f"secret store key does not match: {self.dir} holds secrets but {self.key_file} is "
                f"missing; restore it or set {KEY_ENV}"
            )
        key = AESGCM.generate_key(bit_length=256)
        atomic_write(self.key_file, encode_key(key).encode() + b"\n")
        return key

    def _check_key(self) -> None:
        """Refuse to mix keys: the directory says which key sealed it."""
        try:
            stored = (self.dir / "key-id").read_text().strip()
        except FileNotFoundError:
            return
        if stored == key_id(self._key):
            return
        # Another process may have rotated the key since we loaded it: follow the key file.
        if self._key_origin == str(self.key_file) and self.key_file.exists():
            fresh = decode_key(self.key_file.read_text(), str(self.key_file))
            if key_id(fresh) == stored:
                self._key = fresh
                return
        raise SecretKeyMismatch(
            f"secret store key does not match the one that encrypted {self.dir} (key from "
            f"{self._key_origin}); use the original key, or set {KEY_ENV} to it"
        )

    def _touch(self) -> None:
        atomic_write(self.dir / "changed", pysecrets.token_hex(8).encode())

    @staticmethod
    def _scope(agent: str | None) -> tuple[Scope, str | None]:
        return ("global", None) if agent is None else ("agent", check_agent(agent))

    def _path(self, scope: Scope, agent: str | None, name: str) -> Path:
        if scope == "global":
            return self.dir / "global" / f"{name}{SUFFIX}"
        return self.dir / "agent" / str(agent) / f"{name}{SUFFIX}"

    @staticmethod
    def _label(scope: Scope, agent: str | None, name: str) -> str:
        return f"{name!r} (global)" if scope == "global" else f"{name!r} of agent {agent}"

    @staticmethod
    def _files(folder: Path) -> builtins.list[Path]:
        if not folder.exists():
            return []
        return sorted(
            p for p in folder.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith(".")
            and SECRET_NAME.match(p.name[: -len(SUFFIX)])
        )

    def _seal(self, info: SecretInfo, value: bytes, key: bytes) -> bytes:
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, value, _aad(info.scope, info.agent, info.name, info.version))
        doc = {
            "format": FORMAT,
            "name": info.name,
            "scope": info.scope,
            "agent": info.agent,
            "version": info.version,
            "created_at": info.created_at.isoformat(),
            "updated_at": info.updated_at.isoformat(),
            "size_bytes": info.size_bytes,
            "key_id": key_id(key),
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(sealed).decode(),
        }
        return json.dumps(doc, indent=1).encode() + b"\n"

    def _info(
        self, path: Path, scope: Scope, agent: str | None, name: str
    ) -> tuple[SecretInfo, dict[str, Any]]:
        label = self._label(scope, agent, name)
        try:
            doc = json.loads(path.read_bytes())
            info = SecretInfo(
                name=name,
                scope=scope,
                agent=agent,
                version=str(doc["version"]),
                created_at=datetime.fromisoformat(doc["created_at"]),
                updated_at=datetime.fromisoformat(doc["updated_at"]),
                size_bytes=int(doc["size_bytes"]),
            )
        except FileNotFoundError:
            raise SecretNotFound(f"secret {label} not found") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise SecretCorrupt(f"secret {label}: stored file {path} is unreadable or corrupt") from None
        if not re.fullmatch(r"[0-9a-f]{1,64}", info.version):
            raise SecretCorrupt(f"secret {label}: stored file {path} has an invalid version")
        return info, doc

    def _open(self, info: SecretInfo, doc: dict[str, Any]) -> bytes:
        label = self._label(info.scope, info.agent, info.name)
        self._check_key()
        if doc.get("key_id") != key_id(self._key):
            raise SecretKeyMismatch(
                f"secret store key does not match the one that encrypted secret {label} "
                f"(key from {self._key_origin})"
            )
        try:
            nonce = base64.b64decode(doc["nonce"], validate=True)
            sealed = base64.b64decode(doc["ciphertext"], validate=True)
            aad = _aad(info.scope, info.agent, info.name, info.version)
            return AESGCM(self._key).decrypt(nonce, sealed, aad)
        except (InvalidTag, binascii.Error, KeyError, ValueError, TypeError):
            raise SecretCorrupt(
                f"secret {label} failed authentication: the file was altered, truncated, or moved "
                "from another agent or name"
            ) from None


async def secret_change_task(controller: Any) -> None:
    """A Controller extra task: after any secret write (CLI, gateway, another process), queue every
    agent. Reconcile is idempotent, so only agents whose plan hash moved (they use a changed secret's
    version) are replaced; the others are a no-op. Without it a change waits for the next resync."""
    store = getattr(controller.reconciler, "secrets", None)
    if not isinstance(store, SecretStore):
        return
    async for _ in store.changes(interval=0.5):
        await controller.resync()
