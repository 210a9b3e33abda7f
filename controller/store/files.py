"""FileStore: the embedded Store, a directory of YAML files under $CLAWPEN_HOME.

Layout (one namespace, "default"):
    <home>/agents/<name>.yaml          user-owned: apiVersion, kind, metadata (name, labels,
    <home>/teams/<name>.yaml           annotations) and spec — never status or server fields
    <home>/.state/<plural>/<name>.yaml controller-owned: uid, creationTimestamp, generation,
                                       resourceVersion, hashes of the spec last seen, status
    <home>/.state/resource-version     the last resourceVersion handed out (one sequence for all)
    <home>/.state/lock                 flock serializing every write across processes

Why the split: a person (or `git pull`) owns the spec file and the controller owns the state file,
so a status write never rewrites a file someone is editing, and a hand edit never loses status.
The cost is that a hand edit happens behind the store's back; it is noticed lazily on the next read
(the file's hash differs from the one in state) and turned into what an API write would have
done: a new resourceVersion, and generation + 1 when the spec itself changed. A hand-written file
with no state yet is adopted the same way (uid and creationTimestamp assigned on first read).

A spec file that cannot be read (bad YAML, not a mapping, invalid spec, wrong kind, name not the
file name) is *broken*: get() raises InvalidObject naming the file and the problem, list() skips
it, list_broken() reports it, update_status() still records the controller's verdict, delete()
removes it. Server fields and `status` found in a spec file are ignored (a `get -o yaml` output
checked into git applies cleanly).

Choices where the Store protocol leaves room (the kube store should agree where it can):
- replace() without metadata.resourceVersion is unconditional (what `clawpen apply` does); with a
  stale one, or any one against a broken object, it is a Conflict. A replace that changes nothing
  (same spec, labels, annotations) writes nothing: the user's file keeps its formatting and comments.
- update_status() with an unchanged status writes nothing; on a broken object it returns a
  placeholder (default spec) carrying the status. get_status() reads the status of any object.
- watch() reports changes made after the call (no initial ADDED burst: consumers list first).
  Spec files only, unless asked for status too (`status=True`): then a second watcher on
  `.state/<plural>/` reports every change of a state record (status, resourceVersion) as MODIFIED,
  from this process or another one (a gateway running apart from the controller sees the controller's writes).
- Reads are served from parsed files cached in memory, each used only while its file's stat identity
  (inode, size, mtime, ctime) is unchanged and it was read well after its last change (filecache.py):
  a read by any process always sees the latest complete write, and returns objects of its own.
- A spec file deleted by hand leaves its state; if the file comes back (a revert) the object keeps
  its uid and status. delete() removes both.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import re
import typing
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from controller.resources import Agent, AgentStatus, Resource, Team, TeamStatus
from controller.store.base import (
    BrokenObject,
    Conflict,
    InvalidObject,
    NotFound,
    R,
    StoreError,
    WatchEvent,
)
from controller.store.filecache import ParsedFiles
from controller.store.fileio import atomic_write, digest, remove_durably, sweep_temp_files
from controller.store.filestate import Observed, SpecDocument, StateDir, fresh_state, materialize
from controller.store.fileviews import SharedReads
from controller.store.filewatch import DirectoryWatcher, WatchMode, spec_names
from controller.store.specfile import (
    NAMESPACE,
    SPEC_SUFFIX,
    BrokenSpec,
    SpecReading,
    parse_spec,
    read_spec_file,
    render_spec,
    same_content,
    spec_hash,
    status_type,
)

KINDS_STORED: tuple[type[Resource], ...] = (Agent, Team)
# What may address a file here: any name a file in the directory can have (so a misnamed file can
# still be reported and deleted), but never one that leaves it or names a hidden/temp file.
SAFE_FILE_NAME = re.compile(r"^[^/\\\0.][^/\\\0]{0,249}$")


class NamespaceNotSupported(StoreError):
    """The file store holds a single namespace."""

    status = 400


class FileStore:
    """The Store protocol over a directory of YAML files (see the module docstring)."""

    kind_name = "files"

    def __init__(
        self,
        home: Path,
        *,
        watch_mode: Literal["auto", "inotify", "poll"] = "auto",
        poll_interval: float = 1.0,
    ):
        self.home = Path(home).expanduser()
        if os.environ.get("CLAWPEN_WATCH", "").lower() == "poll":
            watch_mode = "poll"
        if watch_mode not in ("auto", "inotify", "poll"):
            raise ValueError(f"watch_mode must be auto, inotify or poll (got {watch_mode!r})")
        self.watch_mode: WatchMode = watch_mode
        self.poll_interval = poll_interval
        self._state = StateDir(self.home / ".state")
        self._kind_dirs = {kind: str(self.kind_dir(kind)) for kind in KINDS_STORED}
        # Parsed spec files by kind, re-read only when a file changes (see filecache).
        self._specs: dict[type[Resource], ParsedFiles[SpecReading]] = {
            kind: ParsedFiles(functools.partial(read_spec_file, kind)) for kind in KINDS_STORED
        }
        self._views = SharedReads(self)  # list_shared(): validated objects reused (fileviews)
        self._watchers: dict[str, DirectoryWatcher] = {}  # by kind; "<kind>/state" for state records
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._state.root.mkdir(exist_ok=True, mode=0o700)
        for kind in KINDS_STORED:
            self.kind_dir(kind).mkdir(exist_ok=True, mode=0o700)
            self._state.directory(kind).mkdir(exist_ok=True, mode=0o700)
        with self._state.lock():  # no writer is mid-way while we hold it
            for kind in KINDS_STORED:
                sweep_temp_files(self.kind_dir(kind))
                sweep_temp_files(self._state.directory(kind))
            sweep_temp_files(self._state.root)

    def kind_dir(self, cls: type[Resource]) -> Path:
        return self.home / cls.PLURAL

    def spec_path(self, cls: type[Resource], name: str) -> Path:
        return self.kind_dir(cls) / f"{name}{SPEC_SUFFIX}"

    def _spec_key(self, cls: type[Resource], name: str) -> str:
        """spec_path as a string, the cache's key: per object per list, a Path join costs more than a stat."""
        return f"{self._kind_dirs[cls]}/{name}{SPEC_SUFFIX}"

    # ---- checks --------------------------------------------------------------------------------

    @staticmethod
    def _check(cls: type[Resource], namespace: str | None, name: str | None = None) -> None:
        if cls not in KINDS_STORED:
            raise TypeError(f"the file store keeps {', '.join(k.KIND for k in KINDS_STORED)}, not {cls!r}")
        if namespace not in (None, NAMESPACE):
            raise NamespaceNotSupported(
                f"the file store has a single namespace, {NAMESPACE!r} (got {namespace!r})"
            )
        if name is not None and (not isinstance(name, str) or not SAFE_FILE_NAME.match(name)):
            raise NotFound(f"{cls.KIND} {NAMESPACE}/{name}: not found ({name!r} is not a valid name)")

    @staticmethod
    def _not_found(cls: type[Resource], name: str) -> NotFound:
        return NotFound(f"{cls.KIND} {NAMESPACE}/{name} not found")

    # ---- reading -------------------------------------------------------------------------------

    def _observe(self, cls: type[Resource], name: str) -> Observed:
        found = self._specs[cls].read(self._spec_key(cls, name))
        state = self._state.read(cls, name)
        if found is None:
            return Observed(None, None, None, state)
        raw, reading = found
        if isinstance(reading, str):
            return Observed(raw, None, reading, state)
        return Observed(raw, SpecDocument(cls, reading), None, state)

    def _load(self, cls: type[Resource], name: str) -> Observed:
        """Read an object, adopting it or recording a hand edit first when needed (lazy sync)."""
        seen = self._observe(cls, name)
        if seen.raw is None:
            raise self._not_found(cls, name)
        if seen.synced_state(lambda: "") is None:
            return seen  # the common case: no write, no lock
        with self._state.lock():
            seen = self._observe(cls, name)  # a writer may have finished meanwhile
            if seen.raw is None:
                raise self._not_found(cls, name)
            state = seen.synced_state(self._state.next_rv)
            if state is not None:
                self._state.write(cls, name, state)
                seen = seen.with_state(state)
        return seen

    def _written(self, obj: R, raw: bytes, state: dict[str, object]) -> R:
        """What a later get() will return: the written file read back, with its state."""
        cls, name = type(obj), obj.metadata.name
        return materialize(
            cls, name, Observed(raw, parse_spec(cls, self.spec_path(cls, name), raw), None, state)
        )

    # ---- the Store protocol --------------------------------------------------------------------

    async def get(self, cls: type[R], name: str, namespace: str = NAMESPACE) -> R:
        self._check(cls, namespace, name)
        return await asyncio.to_thread(self._get_sync, cls, name)

    def _get_sync(self, cls: type[R], name: str) -> R:
        seen = self._load(cls, name)
        if seen.error is not None:
            raise InvalidObject(cls.KIND, NAMESPACE, name, seen.error)
        return materialize(cls, name, seen)

    async def list(self, cls: type[R], namespace: str | None = None) -> list[R]:
        self._check(cls, namespace)
        return await asyncio.to_thread(self._list_sync, cls)

    def _list_sync(self, cls: type[R]) -> builtins.list[R]:
        found: builtins.list[R] = []
        names = spec_names(self.kind_dir(cls))
        for name in names:
            try:
                found.append(self._get_sync(cls, name))
            except (InvalidObject, NotFound):  # broken: see list_broken; NotFound: deleted meanwhile
                continue
        self._specs[cls].retain_only(self._kind_dirs[cls], (self._spec_key(cls, name) for name in names))
        return found

    async def list_shared(self, cls: type[R], namespace: str | None = None) -> builtins.list[R]:
        """list(), but the list and its objects may be shared with other callers and must not be
        mutated (not in the Store protocol: read-only paths such as the gateway's list route use it
        through store.base.list_shared). Unchanged objects are not validated again (fileviews.py);
        where inotify works, an unchanged list is not even stat()ed again (inotify.py)."""
        self._check(cls, namespace)
        found = self._views.current(cls)  # one non-blocking read: fine on the event loop
        if found is None:
            found = await asyncio.to_thread(self._views.refresh, cls)
        return typing.cast(builtins.list[R], found)

    async def list_broken(
        self, cls: type[Resource], namespace: str | None = None
    ) -> builtins.list[BrokenObject]:
        self._check(cls, namespace)
        return await asyncio.to_thread(self._list_broken_sync, cls)

    def _list_broken_sync(self, cls: type[Resource]) -> builtins.list[BrokenObject]:
        broken: builtins.list[BrokenObject] = []
        for name in spec_names(self.kind_dir(cls)):
            path = self.spec_path(cls, name)
            found = self._specs[cls].read(self._spec_key(cls, name))  # no need to build the healthy ones
            if found is not None and isinstance(found[1], str):
                broken.append(BrokenObject(cls.KIND, NAMESPACE, name, found[1], str(path)))
        return broken

    async def create(self, obj: R) -> R:
        cls = type(obj)
        self._check(cls, obj.metadata.namespace)
        return await asyncio.to_thread(self._create_sync, obj)

    def _create_sync(self, obj: R) -> R:
        cls, name = type(obj), obj.metadata.name
        raw = render_spec(obj)
        with self._state.lock():
            if self.spec_path(cls, name).exists():
                raise Conflict(f"{cls.KIND} {NAMESPACE}/{name} already exists")
            state = fresh_state(obj, raw, self._state.next_rv())
            atomic_write(self.spec_path(cls, name), raw)  # spec first: a reader seeing it waits for state
            self._state.write(cls, name, state)
        return self._written(obj, raw, state)

    async def replace(self, obj: R) -> R:
        cls = type(obj)
        self._check(cls, obj.metadata.namespace)
        return await asyncio.to_thread(self._replace_sync, obj)

    def _replace_sync(self, obj: R) -> R:
        cls, name = type(obj), obj.metadata.name
        wanted_rv = obj.metadata.resource_version
        with self._state.lock():
            seen = self._observe(cls, name)
            if seen.raw is None:
                raise self._not_found(cls, name)
            raw = render_spec(obj, previous=seen.raw)
            synced = seen.synced_state(self._state.next_rv)
            current = synced or seen.state
            assert current is not None
            if wanted_rv is not None:
                if seen.error is not None:
                    raise Conflict(
                        f"{cls.KIND} {NAMESPACE}/{name}: the stored object is invalid ({seen.error}); "
                        "replace it without a resourceVersion to overwrite it"
                    )
                if str(wanted_rv) != str(current["resourceVersion"]):
                    raise Conflict(
                        f"{cls.KIND} {NAMESPACE}/{name} was modified (resourceVersion {wanted_rv} is stale, "
                        f"current is {current['resourceVersion']}); read it again and retry"
                    )
            if obj.metadata.uid is not None and obj.metadata.uid != current["uid"]:
                raise Conflict(f"{cls.KIND} {NAMESPACE}/{name}: uid {obj.metadata.uid} does not match")
            if seen.resource is not None and same_content(seen.resource, obj):
                # Nothing to change: keep the user's file (formatting, comments) byte for byte.
                raw = seen.raw
                if synced is not None:
                    self._state.write(cls, name, synced)
                state = current
            else:
                new_hash = spec_hash(obj)
                generation = int(current["generation"])
                if new_hash != current.get("specHash"):
                    generation += 1
                state = dict(
                    current,
                    generation=generation,
                    specHash=new_hash,
                    fileHash=digest(raw),
                    resourceVersion=self._state.next_rv(),
                )
                atomic_write(self.spec_path(cls, name), raw)
                self._state.write(cls, name, state)
        return self._written(obj, raw, state)

    async def update_status(
        self, cls: type[R], name: str, status: AgentStatus | TeamStatus, namespace: str = NAMESPACE
    ) -> R:
        self._check(cls, namespace, name)
        expected = status_type(cls)
        if not isinstance(status, expected):
            raise TypeError(f"{cls.KIND} status must be a {expected.__name__}, not {type(status).__name__}")
        return await asyncio.to_thread(self._update_status_sync, cls, name, status)

    def _update_status_sync(self, cls: type[R], name: str, status: BaseModel) -> R:
        with self._state.lock():
            seen = self._observe(cls, name)
            if seen.raw is None:
                raise self._not_found(cls, name)
            synced = seen.synced_state(self._state.next_rv)
            current = synced or seen.state
            assert current is not None
            wanted = status.model_dump(by_alias=True, exclude_none=True, mode="json")
            if synced is None and current.get("status") == wanted:
                # The same status again (a resync): no write, no new resourceVersion, as in Kubernetes.
                return materialize(cls, name, seen)
            state = dict(current, status=wanted, resourceVersion=self._state.next_rv())
            self._state.write(cls, name, state)
        return materialize(cls, name, seen.with_state(state))

    async def get_status(
        self, cls: type[Resource], name: str, namespace: str = NAMESPACE
    ) -> BaseModel | None:
        """The recorded status, also for a broken object (not in the Store protocol: the controller
        uses it, when present, to avoid rewriting the same error onto a broken object)."""
        self._check(cls, namespace, name)
        return await asyncio.to_thread(self._get_status_sync, cls, name)

    def _get_status_sync(self, cls: type[Resource], name: str) -> BaseModel | None:
        seen = self._observe(cls, name)
        if seen.raw is None:
            raise self._not_found(cls, name)
        if seen.state is None or seen.state.get("status") is None:
            return None
        try:
            return status_type(cls).model_validate(seen.state["status"])
        except ValidationError:
            return None

    async def delete(self, cls: type[Resource], name: str, namespace: str = NAMESPACE) -> None:
        self._check(cls, namespace, name)
        await asyncio.to_thread(self._delete_sync, cls, name)

    def _delete_sync(self, cls: type[Resource], name: str) -> None:
        with self._state.lock():
            self._specs[cls].forget(self._spec_key(cls, name))
            self._views.forget(cls, name)
            removed = remove_durably(self.spec_path(cls, name))
            self._state.remove(cls, name)  # also clears state left behind by a hand delete
        if not removed:
            raise self._not_found(cls, name)

    # ---- watching ------------------------------------------------------------------------------

    def _watcher(self, cls: type[Resource]) -> DirectoryWatcher:
        watcher = self._watchers.get(cls.KIND)
        if watcher is None:

            def is_valid(path: Path, raw: bytes) -> bool:
                try:
                    parse_spec(cls, path, raw)
                except BrokenSpec:
                    return False
                return True

            watcher = DirectoryWatcher(self.kind_dir(cls), is_valid, self.watch_mode, self.poll_interval)
            self._watchers[cls.KIND] = watcher
        return watcher

    def _state_watcher(self, cls: type[Resource]) -> DirectoryWatcher:
        key = f"{cls.KIND}/state"
        watcher = self._watchers.get(key)
        if watcher is None:
            watcher = DirectoryWatcher(
                self._state.directory(cls), lambda _path, _raw: True, self.watch_mode, self.poll_interval, "state"
            )
            self._watchers[key] = watcher
        return watcher

    def watch(self, cls: type[Resource], *, status: bool = False) -> AsyncIterator[WatchEvent]:
        """Changes of `cls`'s spec files made after this call, by anyone (this store, another
        process, an editor, git), and with `status=True` also of its state records (status writes).
        Must be called inside the running event loop."""
        self._check(cls, None)
        watcher = self._watcher(cls)
        queue = watcher.subscribe()
        watchers = [watcher]
        if status:
            watchers.append(self._state_watcher(cls))
            watchers[-1].subscribe(queue)  # one queue: the two directories' changes, merged in order
        events = self._events(cls, watchers, queue)
        # A consumer that drops the iterator without closing it must not keep a queue filling up.
        for each in watchers:
            weakref.finalize(events, each.unsubscribe, queue)
        return events

    @staticmethod
    async def _events(
        cls: type[Resource], watchers: builtins.list[DirectoryWatcher], queue: asyncio.Queue[object]
    ) -> AsyncIterator[WatchEvent]:
        try:
            async for change in watchers[0].events(queue):
                if change.source == "state":
                    # Whatever happened to the state record (written, created, removed: a creation
                    # and the first status write may fall in one rescan and show as "ADDED"), it is
                    # news about an object the spec watcher reports the birth and death of.
                    # Consumers re-read (level-triggered), so MODIFIED is always the right word.
                    yield WatchEvent("MODIFIED", cls.KIND, NAMESPACE, change.name)
                    continue
                yield WatchEvent(change.type, cls.KIND, NAMESPACE, change.name)
        finally:
            for each in watchers[1:]:
                each.unsubscribe(queue)

    async def close(self) -> None:
        self._views.close()
        watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            await watcher.close()
