"""Private files and key material for the secret store: atomic 0600 writes, locks, keys, recovery.

Kept apart from controller.secrets so the store module reads as the store's rules (names, scopes,
sealing), while the durability details (fsync of file and directory, rename order during a key
rotation) live in one place that can be checked on its own.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class KeyFormatError(ValueError):
    """A key that is not base64 of 32 bytes; the message names where it came from."""


def decode_key(text: str | bytes, origin: str) -> bytes:
    """A key as stored or passed around: base64 of exactly 32 bytes."""
    try:
        key = base64.b64decode(text.strip() if isinstance(text, str | bytes) else text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{origin} is not valid base64 (expected base64 of 32 random bytes)") from None
    if len(key) != 32:
        raise KeyFormatError(f"{origin} must decode to 32 bytes (AES-256), got {len(key)}")
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def key_id(key: bytes) -> str:
    """Identifies a key without revealing it (HMAC, not a bare hash, so it is useless as a guess oracle)."""
    return hmac.new(key, b"clawpen.dev secret-store key id", hashlib.sha256).hexdigest()[:16]


def mkdir_private(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)




@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (the CLI and a running gateway write the same store)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def recover_rotation(home: Path, secrets_dir: Path, key_file: Path) -> None:
    """Finish or undo a rotation that a crash interrupted (see rotate_key's order of steps)."""
    staging, previous = home / "secrets.next", home / "secrets.prev"
    next_key = key_file.with_name("secret.key.next")
    if not secrets_dir.exists():
        if (staging / "key-id").exists():
            os.replace(staging, secrets_dir)
        elif previous.exists():
            os.replace(previous, secrets_dir)
    shutil.rmtree(staging, ignore_errors=True)
    if next_key.exists():
        try:
            stored = (secrets_dir / "key-id").read_text().strip()
            candidate = decode_key(next_key.read_text(), str(next_key))
        except (OSError, ValueError):
            stored, candidate = "", b""
        if candidate and key_id(candidate) == stored:
            os.replace(next_key, key_file)
        else:
            next_key.unlink()
    shutil.rmtree(previous, ignore_errors=True)

