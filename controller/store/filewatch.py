"""Watching one directory of spec files: inotify through watchfiles, polling as the fallback.

Why rescan-and-diff instead of trusting the kernel's event stream: editors write temp files and
rename them, git unlinks and recreates, and inotify coalesces or drops events under load. So an
inotify wakeup only means "look again": the watcher rescans the directory, hashes each spec file and
diffs against what it saw last. That makes both modes produce the same, exact events, ignores
touches and rewrites with identical bytes, and never reports the store's own temp files (hidden
names) or its state directory (not watched at all — status writes must not wake the controller).

One `DirectoryWatcher` serves any number of subscribers in one event loop (one inotify instance per
directory, not per consumer); each subscriber has its own queue and sees every change made after
it subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from controller.store.fileio import digest, is_temp_or_hidden, read_bytes

log = logging.getLogger(__name__)

ChangeType = Literal["ADDED", "MODIFIED", "DELETED", "BROKEN"]
WatchMode = Literal["auto", "inotify", "poll"]
from controller.store.specfile import SPEC_SUFFIX  # noqa: E402

# Even with inotify, rescan this often: covers a directory replaced behind our back and the short
# window between taking the first snapshot and the kernel watch being in place.
SAFETY_RESCAN_SECONDS = 5.0
BROKEN_SETTLE_SECONDS = 0.1
# A file unchanged this long is trusted by its stat identity (timestamps are coarse: a same-size
# rewrite within one tick keeps them; filecache.py makes the same bet for the same reason).
STILL_SECONDS = 2.0


@dataclass(frozen=True)
class FileChange:
    type: ChangeType
    name: str
    source: str = "spec"  # the watcher's label: the file store watches spec files and state records


@dataclass(frozen=True)
class _Seen:
    content_hash: str
    valid: bool
    # (inode, size, mtime_ns, ctime_ns) when the file had been still for STILL_SECONDS at the scan:
    # an unchanged identity then means unchanged bytes, and the next scan need not read it again.
    stat_key: tuple[int, int, int, int] | None = None


_CLOSED = object()


def spec_names(directory: Path) -> list[str]:
    """Object names in a kind directory: visible `*.yaml` files (temp files are hidden)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    return sorted(
        e.name[: -len(SPEC_SUFFIX)]
        for e in entries
        if e.name.endswith(SPEC_SUFFIX) and not is_temp_or_hidden(e.name) and e.is_file()
    )


def _identity(directory: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


class _SessionStop:
    """awatch's stop event for one session: set by the session's end or by the watcher's close()."""

    def __init__(self, outer: asyncio.Event):
        self._outer, self._own = outer, False

    def is_set(self) -> bool:
        return self._own or self._outer.is_set()

    def set(self) -> None:
        self._own = True


class DirectoryWatcher:
    """Scan-diff-broadcast loop over one directory; `is_valid(path, raw)` tells BROKEN from the rest."""

    def __init__(
        self,
        directory: Path,
        is_valid: Callable[[Path, bytes], bool],
        mode: WatchMode,
        poll_interval: float,
        source: str = "spec",
    ):
        self.directory = directory
        self.source = source
        self._is_valid = is_valid
        self.mode = mode
        self.active_mode: Literal["inotify", "poll"] | None = None
        self._poll_interval = poll_interval
        self._snapshot: dict[str, _Seen] = {}
        self._subscribers: set[asyncio.Queue[object]] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()

    # ---- subscribers ---------------------------------------------------------------------------

    def subscribe(self, queue: asyncio.Queue[object] | None = None) -> asyncio.Queue[object]:
        """Register a queue (a new one, or one shared with another watcher to merge their changes)
        and make sure the scan loop runs; call from inside the event loop."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._stop = asyncio.Event()
            self._snapshot = self._scan()  # changes from now on are reported
            self._task = loop.create_task(self._run(), name=f"watch {self.directory}")
        if queue is None:
            queue = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[object]) -> None:
        # May run from a garbage-collection finalizer: only touch the set (the loop notices it).
        self._subscribers.discard(queue)

    async def events(self, queue: asyncio.Queue[object]) -> AsyncIterator[FileChange]:
        try:
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, FileChange)
                yield item
        finally:
            self.unsubscribe(queue)

    async def close(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._broadcast(_CLOSED)
        self._subscribers.clear()

    # ---- scanning ------------------------------------------------------------------------------

    def _scan(self) -> dict[str, _Seen]:
        seen: dict[str, _Seen] = {}
        now = time.time()
        for name in spec_names(self.directory):
            path = self.directory / f"{name}{SPEC_SUFFIX}"
            previous = self._snapshot.get(name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if previous is not None and previous.stat_key == key:
                seen[name] = previous  # still since before the last scan: the same bytes
                continue
            raw = read_bytes(path)
            if raw is None:  # removed between listing and reading
                continue
            content_hash = digest(raw)
            still = key if now - max(st.st_mtime, st.st_ctime) > STILL_SECONDS else None
            if previous is not None and previous.content_hash == content_hash:
                seen[name] = _Seen(previous.content_hash, previous.valid, still)
            else:
                seen[name] = _Seen(content_hash, self._is_valid(path, raw), still)
        return seen

    def _diff(self, new: dict[str, _Seen]) -> list[FileChange]:
        old = self._snapshot
        changes: list[FileChange] = []
        for name, seen in new.items():
            before = old.get(name)
            if before is not None and before.content_hash == seen.content_hash:
                continue
            if not seen.valid:
                changes.append(FileChange("BROKEN", name, self.source))
            else:
                changes.append(FileChange("ADDED" if before is None else "MODIFIED", name, self.source))
        changes.extend(FileChange("DELETED", name, self.source) for name in old.keys() - new.keys())
        return changes

    async def _rescan(self) -> None:
        new = await asyncio.to_thread(self._scan)
        changes = self._diff(new)
        if any(c.type == "BROKEN" for c in changes):
            # An editor writing in place shows a truncated file for an instant: look again shortly
            # before calling it broken, so a save does not flash BROKEN at the controller.
            await asyncio.sleep(BROKEN_SETTLE_SECONDS)
            new = await asyncio.to_thread(self._scan)
            changes = self._diff(new)
        self._snapshot = new
        for change in changes:
            self._broadcast(change)

    def _broadcast(self, item: object) -> None:
        for queue in list(self._subscribers):
            queue.put_nowait(item)

    # ---- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            if self.mode != "poll":
                try:
                    await self._run_inotify()
                    return
                except Exception as err:  # inotify unavailable (limits, exotic filesystem)
                    if self.mode == "inotify":
                        raise
                    log.warning("inotify watch of %s failed (%s); polling instead", self.directory, err)
            await self._run_poll()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.error("watch of %s stopped: %s", self.directory, err)
            self._broadcast(err)

    async def _run_inotify(self) -> None:
        self.active_mode = "inotify"
        while not self._stop.is_set() and self._subscribers:
            # (Re)create the directory and watch it; a session ends when the directory is replaced
            # (rm -rf, a checkout that recreates it): the kernel watch died with the old inode.
            self.directory.mkdir(parents=True, exist_ok=True)
            await self._inotify_session(_identity(self.directory))

    async def _inotify_session(self, identity: tuple[int, int] | None) -> None:
        from watchfiles import awatch

        directory = str(self.directory)
        session_stop = _SessionStop(self._stop)

        def relevant(_change: object, path: str) -> bool:
            name = os.path.basename(path)
            return path == directory or (name.endswith(SPEC_SUFFIX) and not is_temp_or_hidden(name))

        batches = awatch(
            self.directory,
            watch_filter=relevant,
            debounce=400,
            step=30,
            rust_timeout=int(SAFETY_RESCAN_SECONDS * 1000),
            yield_on_timeout=True,
            recursive=False,
            force_polling=False,
            stop_event=session_stop,
        )
        pending: asyncio.Future[object] = asyncio.ensure_future(anext(batches))
        try:
            # awatch registers the kernel watch before its first suspension; once it waits, rescan
            # so a change made between subscribe()'s snapshot and that moment is not missed.
            await asyncio.sleep(0)
            await self._rescan()
            while True:
                try:
                    await pending
                except StopAsyncIteration:
                    return
                if not self._subscribers or self._stop.is_set():
                    return
                await self._rescan()
                if _identity(self.directory) != identity:
                    return
                pending = asyncio.ensure_future(anext(batches))
        finally:
            if not pending.done():
                session_stop.set()  # lets the watcher thread return instead of waiting out its timeout
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                    await pending
            await batches.aclose()

    async def _run_poll(self) -> None:
        self.active_mode = "poll"
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._poll_interval)
            if self._stop.is_set() or not self._subscribers:
                return
            await self._rescan()
