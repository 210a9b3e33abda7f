"""Parsed files kept in memory, valid exactly as long as the file on disk is the one that was parsed.

Why: the file store is read far more than it is written (the gateway lists every agent per request,
the controller on each resync, team status every 2 s), and parsing YAML is what a read costs —
~0.2 ms per file, so 100 agents took ~20 ms while a stat takes ~1 µs. Other processes (the CLI, an
editor, `git pull`) write the same files, so there is no write path to hook: a cached value is only
used while the file's identity — device, inode, size, mtime and ctime — is what it was when read.
Every write of the store is an atomic rename (new inode) and an in-place edit changes mtime/ctime.

The one hole is timestamp granularity: two writes within one kernel clock tick can leave size,
mtime and ctime equal, and a freed inode number can be handed out again at once. So, as git does
with its "racily clean" index entries, an entry is only trusted once it was read at least
RACY_WINDOW_NS after the file's last change; until then every read re-reads the bytes (cheap) and
parses them again only when they differ from the cached ones (the expensive part).

The identity and the bytes come from one open file (fstat of the descriptor we read), so they always
describe the same inode; a write racing with the read only changes the identity afterwards, which
the next read notices.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

# Far above any filesystem timestamp granularity (coarse kernel clock ~4 ms, FAT 2 s) and clock
# skew between the kernel's file times and time.time_ns().
RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True)
class FileIdentity:
    """What changes when a file is replaced or modified."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def settled_before(self, when_ns: int) -> bool:
        """Last changed long enough before `when_ns` that an equal identity means equal bytes."""
        return when_ns - max(self.mtime_ns, self.ctime_ns) > RACY_WINDOW_NS


@dataclass(frozen=True)
class _Entry(Generic[T]):
    identity: FileIdentity
    raw: bytes
    value: T
    trusted: bool  # read long enough after the last change: an equal identity suffices


def stat_identity(path: str) -> FileIdentity | None:
    try:
        return FileIdentity.of(os.stat(path))
    except FileNotFoundError:
        return None


def read_with_identity(path: str) -> tuple[FileIdentity, bytes] | None:
    """The bytes of `path` and the identity of the very inode they came from; None if missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        identity = FileIdentity.of(os.fstat(fd))
        chunks = []
        while chunk := os.read(fd, max(identity.size, 4096) + 1):
            chunks.append(chunk)
        return identity, b"".join(chunks)
    finally:
        os.close(fd)


class ParsedFiles(Generic[T]):
    """`path -> parse(path, bytes)`, re-parsed only when the file changed (see the module docstring).

    Values are shared between callers and must be treated as read-only; callers that hand objects
    out build fresh ones from them. Thread-safe: entries are immutable and swapped whole."""

    def __init__(self, parse: Callable[[Path, bytes], T]):
        self._parse = parse
        self._entries: dict[str, _Entry[T]] = {}  # by path as a string: cheaper to hash than Path
        self._lock = threading.Lock()
        self.parses = 0  # how often `parse` ran: lets tests and benchmarks see the cache work

    def read(self, path: str | Path) -> tuple[bytes, T] | None:
        """The current bytes of `path` and their parsed value, or None when there is no file."""
        path = os.fspath(path)
        entry = self._entries.get(path)
        if entry is not None and entry.trusted:
            identity = stat_identity(path)
            if identity == entry.identity:
                return entry.raw, entry.value
        read_at = time.time_ns()  # before reading: the bytes are at least this fresh
        found = read_with_identity(path)
        if found is None:
            self.forget(path)
            return None
        identity, raw = found
        if entry is not None and entry.raw == raw:
            value = entry.value  # a touch, a rewrite with the same bytes, or a racy entry re-checked
        else:
            value = self._parse(Path(path), raw)
            self.parses += 1
        with self._lock:
            self._entries[path] = _Entry(identity, raw, value, identity.settled_before(read_at))
        return raw, value

    def forget(self, path: str | Path) -> None:
        with self._lock:
            self._entries.pop(os.fspath(path), None)

    def retain_only(self, directory: str | Path, paths: Iterable[str | Path]) -> None:
        """Drop entries of files in `directory` that are not among `paths` (deleted behind our back)."""
        keep = {os.fspath(p) for p in paths}
        prefix = os.path.join(directory, "")
        with self._lock:
            stale = [p for p in self._entries if p.startswith(prefix) and "/" not in p[len(prefix) :]]
            for path in [p for p in stale if p not in keep]:
                del self._entries[path]
