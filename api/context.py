"""What every route needs: the app's collaborators, and the two parsing chores (body, query).

Routes receive a plain Starlette request; `deps(request)` gives them the store, runtime, catalog
and auth service the app was built with. Keeping them on app.state (not module globals) lets tests
and the benchmark run several apps, with different homes, in one process.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection, Request

from api.auth import AuthService
from api.errors import ApiError, field_errors, invalid
from api.usage import UsageCache
from controller.agent_token import AgentTokens
from controller.resources import DNS1123_LABEL, Agent
from controller.runtime.base import Runtime
from controller.settings import Settings
from controller.store.base import NotFound, Store

M = TypeVar("M", bound=BaseModel)


class Catalog(Protocol):
    """controller.catalog.Catalog as the gateway uses it: templates and providers by key."""

    templates: dict[str, Any]
    providers: dict[str, Any]


@dataclass
class Deps:
    settings: Settings
    store: Store
    runtime: Runtime
    catalog: Catalog
    auth: AuthService
    http: httpx.AsyncClient | None = None  # created in the app's lifespan, used by the chat relay
    usage: UsageCache = field(default_factory=UsageCache)  # /api/metrics, shared by its callers
    tokens: AgentTokens | None = None  # each agent's bearer token for its chat contract

    def key(self, name: str) -> str:
        return f"{self.settings.namespace}/{name}"

    async def agent(self, name: str) -> Agent:
        """The agent by name; a name that cannot exist is simply not found (never a 500)."""
        if not DNS1123_LABEL.match(name):
            raise NotFound(f"agent {name!r} not found")
        return await self.store.get(Agent, name, self.settings.namespace)


def deps(conn: HTTPConnection) -> Deps:
    return conn.app.state.deps  # type: ignore[no-any-return]


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ApiError(400, f"request body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, f"request body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    if data is None:
        raise ApiError(400, "request body is required (JSON)")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise invalid(field_errors(err)) from None


MAX_JSON_DEPTH = 64  # no request model nests deeper than a handful of levels
_OPENERS = re.compile(rb'[\[{\]}"\\]')


def json_depth(raw: bytes) -> int:
    """The deepest array/object nesting in a JSON text (brackets inside strings do not count).

    Checked before parsing: json.loads and pydantic recurse per level, and 1,000 levels used to
    end in a RecursionError and a 500.
    """
    depth = deepest = 0
    in_string = False
    escaped_at = -1  # the index of the character a backslash escapes
    for match in _OPENERS.finditer(raw):
        ch, at = match.group(), match.start()
        if in_string:
            if at == escaped_at:
                continue
            if ch == b"\\":
                escaped_at = at + 1
            elif ch == b'"':
                in_string = False
            continue
        if ch == b'"':
            in_string = True
        elif ch in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif ch in (b"]", b"}"):
            depth -= 1
    return deepest


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid([{"field": name, "message": "must be an integer"}]) from None
    if not low <= value <= high:
        raise invalid([{"field": name, "message": f"must be between {low} and {high}"}])
    return value
