"""Route matching done once per distinct request line, shared by the guard and the router.

Why: the route table has ~60 entries and Starlette finds a route by trying each one's regular
expression in turn (~1–3 µs each). The guard must know the route before the router runs (to read its
declared permission), so every request matched the table twice: ~70 µs at idle, more than the bare
Starlette route spends on a whole request. Which route matches depends only on the scope type, the
method and the path (no route here matches on host), so the result is remembered per
(type, method, root_path, path): the guard and the router then each pay a dict lookup.

The memo is bounded (cleared when full): paths carry object names, so there is no fixed set of keys,
but a cleared memo costs only the matching it saves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send

MAX_ENTRIES = 4096

Found = tuple[Match, BaseRoute, Mapping[str, Any]]


class RouteTable:
    """The first route that fully matches a scope, else the first partial match (405), else None."""

    def __init__(self, routes: Sequence[BaseRoute]):
        self.routes = routes
        self._memo: dict[tuple[str, str, str, str], Found | None] = {}

    def find(self, scope: Scope) -> Found | None:
        key = (scope["type"], scope.get("method", ""), scope.get("root_path", ""), scope["path"])
        try:
            return self._memo[key]
        except KeyError:
            pass
        found: Found | None = None
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                found = (match, route, child)
                break
            if match is Match.PARTIAL and found is None:
                found = (match, route, child)
        if len(self._memo) >= MAX_ENTRIES:
            self._memo.clear()
        self._memo[key] = found
        return found


def child_scope(found: Found) -> dict[str, Any]:
    """The child scope of a match, as the caller's own (path_params may be changed by a route)."""
    child = found[2]
    if "path_params" in child:
        return {**child, "path_params": dict(child["path_params"])}
    return dict(child)


class TableRouter(Router):
    """Starlette's Router, finding the route through a RouteTable (the same one the guard uses).
    What the table does not find (404, trailing-slash redirects) goes to Starlette's own code."""

    def __init__(self, table: RouteTable, **kwargs: Any):
        super().__init__(list(table.routes), **kwargs)
        self.table = table

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await super().app(scope, receive, send)
            return
        found = self.table.find(scope)
        if found is None:
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        scope["route"] = found[1]
        scope.update(child_scope(found))
        await found[1].handle(scope, receive, send)
