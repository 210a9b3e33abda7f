"""Each agent's API JSON rendered once per resourceVersion and reused by the list route.

Why: `GET /api/agents` spent most of its time turning every stored Agent into AgentOut and then into
JSON on every request (~60 µs an agent). Every change to an object — spec, labels, status, a hand
edit the FileStore notices on read — gives it a new resourceVersion (and a re-created object has a
new uid), so (uid, resourceVersion) names one exact rendering and a cached one is never stale. The
cache holds one entry per live object key and is bounded by the fleet size.
"""

from __future__ import annotations

from collections.abc import Callable

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

