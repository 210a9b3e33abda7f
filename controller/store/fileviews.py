"""Validated objects kept per object, handed out shared to readers that promise not to mutate them.

Why: after filecache.py, listing agents no longer parsed YAML, but every list still validated each
object again (pydantic, ~50 µs an agent) so that each caller got objects of its own to mutate. The
gateway's `GET /api/agents` only reads them, and at 100 agents that validation was 5 of its 5.5 ms.

The key needs no clock and no stat of its own: an object is built from two parsed files — the spec
document and the state record — and ParsedFiles hands out the *same* value object for as long as a
file's bytes are the same (a new parse always makes a new one). So "both values are the very objects
this entry was built from" means "both files hold the bytes this object was built from", and the
entry is exact: every change — an API write, a status write, a hand edit, a delete and re-create —
reaches the bytes of one of the two files and therefore misses. The entry holds references to both
values, so their identities cannot be recycled while it lives.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from controller.resources import Resource
from controller.store.base import NotFound
from controller.store.filestate import SpecDocument, materialize
from controller.store.filewatch import spec_names
from controller.store.inotify import ChangeFeed

if TYPE_CHECKING:
    from controller.store.files import FileStore

R_co = TypeVar("R_co", bound=Resource)


class SharedObjects(Generic[R_co]):
    """name -> the object last built from (spec document, state record). Thread-safe: entries are
    tuples swapped whole."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[object, object, R_co]] = {}
        self._lock = threading.Lock()
        self.builds = 0  # objects built (misses): lets tests and benchmarks see the cache work

    def get(self, name: str, document: object, state: object) -> R_co | None:
        hit = self._entries.get(name)
        if hit is not None and hit[0] is document and hit[1] is state:
            return hit[2]
        return None

    def put(self, name: str, document: object, state: object, obj: R_co) -> None:
        self.builds += 1
        self._entries[name] = (document, state, obj)

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)

    def retain_only(self, names: Iterable[str]) -> None:
        """Drop the entries of objects that are gone."""
        keep = set(names)
        with self._lock:
            for name in [n for n in self._entries if n not in keep]:
                del self._entries[name]


class LiveList(Generic[R_co]):
    """A kind's healthy objects sorted by name, kept up to date by name from a ChangeFeed.

    `current()` answers the list built last if the feed reports no change since (one non-blocking
    read: cheap enough for the event loop); otherwise None, and `refresh()` rebuilds the objects of
    the names that changed (every name when the feed cannot tell) with `build`, which checks the
    files themselves, so a change racing with a rebuild is at worst picked up by the next call.
    The list returned is shared like its objects: callers must not mutate it."""

    def __init__(
        self,
        feed: ChangeFeed,
        key: str,
        names: Callable[[], list[str]],
        build: Callable[[str], R_co | None],
    ):
        self._feed, self._key, self._names, self._build = feed, key, names, build
        self._lock = threading.Lock()  # guards the fields below
        self._rebuilding = threading.Lock()  # one rebuild at a time
        self._objects: dict[str, R_co] = {}
        self._pending: set[str] | None = None  # names to rebuild; None: all of them
        self._current: list[R_co] | None = None
        self.rebuilds = 0

    def _absorb(self) -> None:
        changed = self._feed.drain(self._key)
        if changed is None:
            self._pending, self._current = None, None
        elif changed:
            if self._pending is not None:
                self._pending |= changed
            self._current = None

    def current(self) -> list[R_co] | None:
        with self._lock:
            self._absorb()
            return self._current

    def refresh(self) -> list[R_co]:
        with self._rebuilding:
            with self._lock:
                self._absorb()
                if self._current is not None:
                    return self._current
                take, self._pending = self._pending, set()
                objects = {} if take is None else dict(self._objects)
            try:
                for name in self._names() if take is None else take:
                    obj = self._build(name)
                    if obj is None:
                        objects.pop(name, None)
                    else:
                        objects[name] = obj
            except BaseException:
                with self._lock:
                    self._pending = None  # start over next time
                raise
            result = [objects[name] for name in sorted(objects)]
            with self._lock:
                self.rebuilds += 1
                self._objects = objects
                self._absorb()
                if self._pending is not None and not self._pending:
                    self._current = result
            return result


class SharedReads:
    """The FileStore's list_shared(), kept apart from files.py (so it reads the store's caches): per
    kind a LiveList when inotify works here and the store is not told to poll, else every object's
    files checked on each call; shared objects either way."""

    def __init__(self, store: FileStore):
        self._store = store
        self._objects: dict[type[Resource], SharedObjects[Resource]] = {}
        self._feed: ChangeFeed | None | Literal[False] = None  # False: none to be had, check every file
        self._live: dict[type[Resource], LiveList[Resource]] = {}
        self._lock = threading.Lock()

    def current(self, cls: type[Resource]) -> list[Resource] | None:
        """The list if it is known unchanged (without touching any object's files), else None."""
        live = self._live_list(cls)
        return live.current() if live is not None else None

    def refresh(self, cls: type[Resource]) -> list[Resource]:
        live = self._live_list(cls)
        if live is not None:
            return live.refresh()
        names = spec_names(self._store.kind_dir(cls))
        found = [obj for obj in map(functools.partial(self.one, cls), names) if obj is not None]
        self._shared(cls).retain_only(names)
        return found

    def forget(self, cls: type[Resource], name: str) -> None:
        self._shared(cls).forget(name)

    def close(self) -> None:
        with self._lock:
            if self._feed:
                self._feed.close()
            self._feed, self._live = False, {}

    def _shared(self, cls: type[Resource]) -> SharedObjects[Resource]:
        shared = self._objects.get(cls)
        if shared is None:
            shared = self._objects.setdefault(cls, SharedObjects())
        return shared

    def _live_list(self, cls: type[Resource]) -> LiveList[Resource] | None:
        live = self._live.get(cls)
        if live is not None or self._feed is False:
            return live
        store = self._store
        with self._lock:
            if self._feed is None:
                self._feed = (ChangeFeed.open() if store.watch_mode != "poll" else None) or False
            feed = self._feed
            if feed is False:
                return None
            if cls not in self._live:
                # Watch first, list after: a change made while the first list is built is reported.
                directories = (store.kind_dir(cls), store._state.directory(cls))
                if not all(feed.watch(directory, cls.KIND) for directory in directories):
                    feed.forget(cls.KIND)
                    return None
                self._live[cls] = LiveList(
                    feed, cls.KIND, lambda: spec_names(store.kind_dir(cls)), functools.partial(self.one, cls)
                )
            return self._live[cls]

    def one(self, cls: type[Resource], name: str) -> Resource | None:
        """The shared object `name` (None: gone or broken), validated only when a file changed."""
        store, shared = self._store, self._shared(cls)
        spec = store._specs[cls].read(store._spec_key(cls, name))
        if spec is None:
            shared.forget(name)
            return None
        hit = shared.get(name, spec[1], store._state.read(cls, name))
        if hit is not None:
            return hit
        try:
            seen = store._load(cls, name)
        except NotFound:
            return None
        if seen.error is not None or not isinstance(seen.spec, SpecDocument):
            return None  # broken: see list_broken
        obj = materialize(cls, name, seen)
        shared.put(name, seen.spec.data, seen.state, obj)
        return obj
