"""The watch hub: one store watch per kind, fanned out to every /api/watch client.

Why a hub rather than a store watch per client: a dashboard tab per user, each holding a stream,
must not multiply the store's watchers or re-render the same object once per client. The hub keeps
the current objects *as the REST API renders them* (so a watch event is byte-for-byte what a GET
would return) and a bounded log of recent events numbered in one sequence, which makes resuming a
dropped stream (`Last-Event-ID: <epoch>-<seq>`) a slice of that log. An id from another process
(another epoch) or older than the log gets a fresh snapshot instead, announced by a RESET event.

What it reacts to — never a timer that re-lists:
- the store's watch of Agents with status writes included (`watch(Agent, status=True)`), so a
  phase change the controller writes reaches the page at once, and of Teams (spec changes);
- a team's REST form carries a status derived from its agents, so every agent change re-renders the
  teams (a handful of pure computations) and emits the ones whose rendering changed. Team files
  (teams/*.toml) are re-read on that occasion too (the registry checks their stat identity).
Events are coalesced per object: a burst of writes to one agent becomes one re-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from starlette.requests import HTTPConnection

from api.context import Deps
from api.convert import agent_out
from controller.resources import Agent, Team
from controller.store.base import InvalidObject, NotFound, StoreError

log = logging.getLogger("clawpen.api.watch")

KINDS = ("agents", "teams")
Kind = Literal["agents", "teams"]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
LOG_SIZE = 4096  # events kept for resuming
CLIENT_QUEUE = 10_000  # a client this far behind is dropped (it reconnects and resumes or resyncs)
REWATCH_SECONDS = 1.0


@dataclass(frozen=True)
class Event:
    seq: int
    type: EventType
    kind: Kind
    name: str
    object: dict[str, Any]
    resource_version: str | None

    def payload(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "kind": self.kind,
            "name": self.name,
            "object": self.object,
            "resourceVersion": self.resource_version,
        }


@dataclass(eq=False)  # kept in a set, by identity
class Subscription:
    queue: asyncio.Queue[Event | None]
    kinds: frozenset[str]
    initial: list[Event]
    resumed: bool
    reset: bool  # asked to resume but could not: the client must drop what it has
    seq: int  # the hub's sequence when the snapshot was taken: the SYNCED event's id


class _Conn:
    """What api.routes.teams needs from a connection: the app (for its deps and team registry)."""

    def __init__(self, app: Any) -> None:
        self.app = app


class WatchHub:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self.log: deque[Event] = deque(maxlen=LOG_SIZE)
        self.objects: dict[tuple[Kind, str], tuple[dict[str, Any], str | None]] = {}
        self.agents: dict[str, Agent] = {}
        self.subscribers: set[Subscription] = set()
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # ---- clients -------------------------------------------------------------------------------

    def event_id(self, seq: int | None = None) -> str:
        return f"{self.epoch}-{self.seq if seq is None else seq}"

    async def subscribe(self, kinds: frozenset[str], last_event_id: str | None) -> Subscription:
        self.start()
        await self.ready.wait()
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        # No await from here to the end: the snapshot and the queue see the same moment.
        resumed = self._since(last_event_id)
        if resumed is not None:
            initial = [e for e in resumed if e.kind in kinds]
        else:
            initial = [
                Event(self.seq, "ADDED", kind, name, obj, rv)
                for (kind, name), (obj, rv) in sorted(self.objects.items())
                if kind in kinds
            ]
        sub = Subscription(
            queue, kinds, initial, resumed is not None, last_event_id is not None and resumed is None, self.seq
        )
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def _since(self, last_event_id: str | None) -> list[Event] | None:
        """The events after `last_event_id`, or None when they are not all in the log."""
        if not last_event_id:
            return None
        epoch, _, raw_seq = last_event_id.strip().partition("-")
        if epoch != self.epoch or not raw_seq.isdigit():
            return None
        seq = int(raw_seq)
        if seq > self.seq:
            return None
        oldest = self.log[0].seq if self.log else self.seq + 1
        if seq < oldest - 1 and seq != self.seq:
            return None  # some events after it fell out of the log
        return [e for e in self.log if e.seq > seq]

    # ---- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._tasks = [asyncio.create_task(self._run(), name="watch hub")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for sub in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)

    @property
    def deps(self) -> Deps:
        return cast(Deps, self.app.state.deps)

    async def _run(self) -> None:
        pending: asyncio.Queue[tuple[Kind, str]] = asyncio.Queue()
        feeders = [
            asyncio.create_task(self._feed("agents", pending)),
            asyncio.create_task(self._feed("teams", pending)),
        ]
        try:
            await self._resync()
            self.ready.set()
            while True:
                first = await pending.get()
                batch = {first}
                while not pending.empty():  # coalesce a burst: one re-read per object
                    batch.add(pending.get_nowait())
                try:
                    await self._apply(batch)
                except StoreError as err:
                    log.warning("watch: re-reading changed objects failed (%s); re-listing", err)
                    await asyncio.sleep(REWATCH_SECONDS)
                    await self._resync()
        finally:
            for task in feeders:
                task.cancel()
            for task in feeders:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _feed(self, kind: Kind, pending: asyncio.Queue[tuple[Kind, str]]) -> None:
        cls: type[Agent] | type[Team] = Agent if kind == "agents" else Team
        first = True
        while True:
            try:
                # A team's REST form derives its status from its agents (re-rendered on their
                # events), not from the status the controller stores: its spec changes suffice.
                events = self.deps.store.watch(cls, status=kind == "agents")
                if not first:
                    await self._resync()  # what changed while the watch was down
                first = False
                async for event in events:
                    pending.put_nowait((kind, event.name))
            except asyncio.CancelledError:
                raise
            except (StoreError, TypeError, KeyError, OSError) as err:  # TypeError: a store without Teams
                log.warning("watch of %s ended (%s); re-watching", kind, err)
            await asyncio.sleep(REWATCH_SECONDS)

    async def _resync(self) -> None:
        d = self.deps
        agents = await d.store.list(Agent, d.settings.namespace)
        for name in set(self.agents) - {a.name for a in agents}:
            self._agent_gone(name)
        for agent in agents:
            self._agent_seen(agent)
        await self._teams()

    async def _apply(self, batch: set[tuple[Kind, str]]) -> None:
        d = self.deps
        for kind, name in sorted(batch):
            if kind != "agents":
                continue
            try:
                agent = await d.store.get(Agent, name, d.settings.namespace)
            except (NotFound, InvalidObject):
                self._agent_gone(name)
            else:
                self._agent_seen(agent)
        await self._teams()

    def _agent_seen(self, agent: Agent) -> None:
        self.agents[agent.name] = agent
        self._put("agents", agent.name, agent_out(agent).model_dump(mode="json"), agent.metadata.resource_version)

    def _agent_gone(self, name: str) -> None:
        self.agents.pop(name, None)
        self._drop("agents", name)

    async def _teams(self) -> None:
        from api.routes.teams import all_teams, team_out

        conn = cast(HTTPConnection, _Conn(self.app))
        teams = await all_teams(conn)
        agents = list(self.agents.values())
        for name, (team, source) in teams.items():
            rendered = team_out(team, source, agents).model_dump(mode="json")
            self._put("teams", name, rendered, team.metadata.resource_version)
        for kind, name in list(self.objects):
            if kind == "teams" and name not in teams:
                self._drop("teams", name)

    # ---- emitting ------------------------------------------------------------------------------

    def _put(self, kind: Kind, name: str, obj: dict[str, Any], rv: str | None) -> None:
        before = self.objects.get((kind, name))
        if before is not None and before[0] == obj:
            return  # the same rendering: nothing a client could see changed
        self.objects[(kind, name)] = (obj, rv)
        self._emit("ADDED" if before is None else "MODIFIED", kind, name, obj, rv)

    def _drop(self, kind: Kind, name: str) -> None:
        before = self.objects.pop((kind, name), None)
        if before is not None:
            self._emit("DELETED", kind, name, before[0], before[1])

    def _emit(self, type_: EventType, kind: Kind, name: str, obj: dict[str, Any], rv: str | None) -> None:
        self.seq += 1
        event = Event(self.seq, type_, kind, name, obj, rv)
        self.log.append(event)
        for sub in list(self.subscribers):
            if kind not in sub.kinds:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("watch client fell %d events behind; dropping it", CLIENT_QUEUE)
                self.subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)


def hub_for(conn: HTTPConnection, factory: Callable[[Any], WatchHub] = WatchHub) -> WatchHub:
    """The app's hub, created on first use (one per app, like its deps)."""
    state = conn.app.state
    if getattr(state, "watch_hub", None) is None:
        state.watch_hub = factory(conn.app)
    return cast(WatchHub, state.watch_hub)
