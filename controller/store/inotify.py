"""Which files changed since I last asked: Linux inotify, read without blocking, without a thread.

Why: proving that a list of 1,000 objects is unchanged by stat()ing both files of each object costs
2,000 system calls per list, more than the rest of a gateway request. inotify queues an event in the
kernel *during* the write, rename, unlink or chmod system call that changes a file, whoever makes it
(this process, the CLI, an editor, `git pull`). So when a non-blocking read of the inotify descriptor
finds no event for a name, nothing has changed that file since the previous read: a write completed
before that read began is never missed (the same promise the stat-keyed cache gives), and a reader
needs no background thread and no sleep. What this cannot see — a queue overflow, a watched
directory removed or moved, inotify unavailable (another OS, a network filesystem, the per-user
instance limit) — is reported as "everything may have changed" (None), or the feed is not opened
and callers keep checking every file themselves.

Only writes count (IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, creates, deletes, renames): our own reads
produce no events.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import struct
import sys
import threading
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
WRITES = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW | IN_IGNORED  # the watch can no longer vouch
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name

_libc: ctypes.CDLL | None = None


def _inotify() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            _libc = libc
        except (OSError, AttributeError):
            return None
    return _libc


class ChangeFeed:
    """Names of changed files per key (a key covers one or more watched directories).

    `drain(key)` reads whatever the kernel queued (never blocks) and returns the names that changed
    under `key` since the previous drain(key): a set of file names without SUFFIX, hidden names
    (temp files) left out; None when it cannot tell (everything may have changed). Thread-safe."""

    SUFFIX = ".yaml"

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()
        self._keys: dict[int, str] = {}  # watch descriptor -> key
        self._pending: dict[str, set[str] | None] = {}
        self._dead: set[str] = set()  # keys with a directory no longer watched: never vouched for again
        self._closer = weakref.finalize(self, os.close, fd)

    @classmethod
    def open(cls) -> ChangeFeed | None:
        libc = _inotify()
        if libc is None:
            return None
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.info("inotify unavailable (%s): file lists are checked file by file", os.strerror(ctypes.get_errno()))
            return None
        return cls(fd)

    def watch(self, directory: Path, key: str) -> bool:
        """Report changes of files in `directory` under `key`; False if it cannot be watched."""
        libc = _inotify()
        assert libc is not None
        wd = libc.inotify_add_watch(self._fd, os.fsencode(directory), WRITES | IN_DELETE_SELF | IN_MOVE_SELF)
        if wd < 0:
            log.info("cannot watch %s (%s)", directory, os.strerror(ctypes.get_errno()))
            return False
        with self._lock:
            self._keys[wd] = key
            self._pending.setdefault(key, set())
        return True

    def drain(self, key: str) -> set[str] | None:
        with self._lock:
            self._read()
            if key in self._dead or key not in self._pending:
                return None
            found = self._pending[key]
            self._pending[key] = set()
            return found

    def _read(self) -> None:
        """Move every queued event into the pending sets (lock held)."""
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:  # closed
                self._everything()
                return
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _cookie, length = EVENT.unpack_from(data, offset)
                offset += EVENT.size
                raw = data[offset : offset + length].rstrip(b"\0")
                offset += length
                if mask & LOST:
                    if mask & IN_Q_OVERFLOW:
                        self._everything()
                    else:
                        key = self._keys.pop(wd, None)
                        if key is not None:
                            self._lost(key)
                    continue
                key = self._keys.get(wd)
                pending = self._pending.get(key) if key is not None else None
                name = os.fsdecode(raw)
                if pending is None or not name or name.startswith(".") or not name.endswith(self.SUFFIX):
                    continue
                pending.add(name[: -len(self.SUFFIX)])

    def _everything(self) -> None:
        for key in self._pending:
            self._pending[key] = None

    def _lost(self, key: str) -> None:
        """A directory of `key` is no longer watched: its changes can never be vouched for again."""
        self._dead.add(key)
        self._pending[key] = None

    def forget(self, key: str) -> None:
        """Stop vouching for `key` (a directory of it could not be watched)."""
        with self._lock:
            self._lost(key)

    def alive(self, key: str) -> bool:
        with self._lock:
            return key not in self._dead

    def close(self) -> None:
        self._closer()
