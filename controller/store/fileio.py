"""Crash-safe file writes and the cross-process write lock of the file store.

The CLI (`clawpen apply`), the gateway and the controller are separate processes that write the
same directory at the same time. Two things keep that safe:
- every write goes to a temp file in the same directory, is fsynced and then renamed over the
  target (rename is atomic on POSIX), so a reader sees the old bytes or the new ones, never half;
- every read-modify-write holds an flock on one lock file, so two writers never interleave
  (flock conflicts between separate open() calls even inside one process, so threads are covered).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_prefix(target: Path) -> str:
    """Temp files start with a dot so watchers and listings skip them."""
    return f".{target.name}."


def is_temp_or_hidden(name: str) -> bool:
    return name.startswith(".")


def fsync_dir(directory: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that no reader ever sees a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def remove_durably(path: Path) -> bool:
    """Unlink `path` (and persist the unlink); False when it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


# What atomic_write's mkstemp names look like: "." + target name + "." + 8 random chars + ".tmp".
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def sweep_temp_files(directory: Path) -> int:
    """Remove temp files a crashed writer left behind. Call only while holding the write lock."""
    removed = 0
    for entry in directory.iterdir():
        if _TEMP_NAME.match(entry.name) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path` (created if missing) for the duration of the block."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
