"""Each agent's API JSON rendered once per resourceVersion and reused by the list route.

Why: `GET /api/agents` spent most of its time turning every stored Agent into AgentOut and then into
JSON on every request (~60 µs an agent). Every change to an object — spec, labels, status, a hand
edit the FileStore notices on read — gives it a new resourceVersion (and a re-created object has a
new uid), so (uid, resourceVersion) names one exact rendering and a cached one is never stale. The
cache holds one entry per live object key and is bounded by the fleet size.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from controller.resources import Agent

MAX_ENTRIES = 20_000


class RenderCache:
    def __init__(self, render: Callable[[Agent], str]):
        self._render = render
        self._entries: dict[str, tuple[str | None, str | None, str]] = {}

    def json(self, agent: Agent) -> str:
        """The JSON text of one agent (rendered when its uid or resourceVersion is new)."""
        meta = agent.metadata
        if meta.resource_version is None:
            return self._render(agent)
        hit = self._entries.get(agent.key)
        if hit is not None and hit[0] == meta.uid and hit[1] == meta.resource_version:
            return hit[2]
        text = self._render(agent)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[agent.key] = (meta.uid, meta.resource_version, text)
        return text

    def array(self, agents: list[Agent]) -> bytes:
        """A JSON array of the agents, in the given order."""
        return ("[" + ",".join(self.json(a) for a in agents) + "]").encode()



class PageCache:
    """Whole list answers, reused while the store hands back the very same list.

    The FileStore's list_shared() returns the identical (immutable, shared) list object for as long
    as no file behind it changed, so the answer to the same query from a caller who may see the same
    projects is the same bytes: this saves filtering, sorting and joining 1,000 agents per request.
    Any other store returns a new list each time and simply never hits. Only answers built from the
    newest list are kept (older ones can never hit again), within a byte budget: at 1,000 agents an
    answer is ~700 KB and the query string is the caller's to vary."""

    MAX_BYTES = 16 * 1024 * 1024

    def __init__(self) -> None:
        self._source: object = None  # the list the entries were built from (kept: its id stays unique)
        self._entries: dict[Hashable, tuple[bytes, dict[str, str]]] = {}
        self._bytes = 0

    def get(self, key: Hashable, source: object) -> tuple[bytes, dict[str, str]] | None:
        if source is not self._source:
            return None
        return self._entries.get(key)

    def put(self, key: Hashable, source: object, body: bytes, headers: dict[str, str]) -> None:
        if source is not self._source or self._bytes + len(body) > self.MAX_BYTES:
            self._source, self._entries, self._bytes = source, {}, 0
        if len(body) <= self.MAX_BYTES:
            self._entries[key] = (body, headers)
            self._bytes += len(body)
