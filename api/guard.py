"""The one guard: who is calling (access token or API token) and may they call this route.

It is plain ASGI, in front of the router, so HTTP and WebSocket routes get the same check. It finds
the route the router will pick (same `matches()`), reads the permission the route table declared
for it (api.permissions), resolves the project the route acts on (the `{id}` agent's project, or
every member agent's for a team) and refuses with a 403 naming the missing permission. Routes that
declared nothing are refused outright (fail closed); unmatched paths under /api still need a
credential, so probing for routes says nothing to a stranger.

An open WebSocket re-checks its credential every few seconds: a new password, a disabled or deleted
user, a revoked token family or API token, or a lost grant closes it (4401/4403) while it relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import AuthError, AuthService
from api.permissions import ALL, ROLE_RANK, Need, Principal, Role, declared
from api.routematch import RouteTable
from controller.store.base import NotFound
from controller.users.store import ADMIN_NAME
from controller.users.tokens import PREFIX as API_TOKEN_PREFIX

PROTECTED_PREFIX = "/api/"
WS_UNAUTHORIZED = 4401
WS_FORBIDDEN = 4403
RECHECK_SECONDS = 2.0
UNDECLARED = Need("route-declares-no-permission", "global")

log = logging.getLogger("clawpen.api.guard")


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    if scope["type"] == "websocket":  # browsers cannot set headers on a WebSocket
        from urllib.parse import parse_qs

        tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if tokens:
            return tokens[0]
    return None


def authenticate(auth: AuthService, token: str) -> Principal:
    """The principal a credential stands for, checked against the users store as it is *now*."""
    if token.startswith(API_TOKEN_PREFIX):
        found = auth.api_tokens.lookup(token)
        if found is None:
            raise AuthError("API token unknown, revoked or expired")
        owner = _user_rights(auth, found.owner)
        if owner is None:
            raise AuthError(f"the owner of API token {found.name!r} no longer exists or is disabled")
        role = min(Role(found.role), owner[0], key=lambda r: ROLE_RANK[r])
        return Principal(
            name=found.owner,
            role=role,
            projects=_intersect(frozenset(found.projects), owner[1]),
            token=found.name,
            credential={"api_token": found.id},
        )
    claims = auth.tokens.verify_access(token)
    rights = _user_rights(auth, str(claims["sub"]))
    if rights is None:
        raise AuthError(f"user {claims['sub']!r} no longer exists or is disabled")
    return Principal(name=str(claims["sub"]), role=rights[0], projects=rights[1], credential=claims)


def _user_rights(auth: AuthService, name: str) -> tuple[Role, frozenset[str]] | None:
    if name == ADMIN_NAME:
        return (Role.ADMIN, frozenset({ALL})) if auth.admin.exists() else None
    user = auth.users.get(name)
    if user is None or not user.enabled:
        return None
    return Role(user.role), frozenset(user.projects)


def _intersect(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    if ALL in a:
        return b
    if ALL in b:
        return a
    return a & b


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        auth: AuthService,
        routes: Sequence[BaseRoute],
        recheck: float = RECHECK_SECONDS,
        table: RouteTable | None = None,
    ):
        self.app = app
        self.auth = auth
        self.routes = routes
        self.recheck = recheck
        self.table = table or RouteTable(routes)  # shared with the router when the app passes it

    def match(self, scope: Scope) -> tuple[BaseRoute | None, dict[str, Any]]:
        """The route the router will pick (a full match, else the first partial one) and its params."""
        found = self.table.find(scope)
        if found is None:
            return None, {}
        return found[1], dict(found[2].get("path_params", {}))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        route, params = self.match(scope)
        need = declared(route) if route is not None else None
        path: str = scope["path"]
        if route is not None:
            scope["clawpen.route"] = getattr(route, "path", path)
            scope["clawpen.object"] = "/".join(str(v) for v in params.values()) or None
        if route is None and not path.startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)  # a 404 from the router; nothing to protect
            return
        if need is not None and need.scope == "public":
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        try:
            if token is None:
                raise AuthError("missing access token (Authorization: Bearer <token>)")
            who = authenticate(self.auth, token)
        except AuthError as err:
            await refuse(scope, receive, send, 401, str(err), None)
            return
        scope["clawpen.principal"] = who
        scope["auth"] = who.credential  # what the first wave's routes read
        if route is not None:
            missing = await self.missing(scope, need or UNDECLARED, params, who)
            if missing is not None:
                await refuse(scope, receive, send, 403, missing[0], missing[1])
                return
        if scope["type"] == "websocket":
            await self._watched(scope, receive, send, token, need, params)
        else:
            await self.app(scope, receive, send)

    async def missing(
        self, scope: Scope, need: Need, params: dict[str, Any], who: Principal
    ) -> tuple[str, dict[str, Any]] | None:
        """None when allowed, else (message, detail) naming the missing permission."""
        if need is UNDECLARED:
            return ("this route declares no permission (add permission= to its route table entry)", _detail(need))
        if not who.can(need.action):
            return (f"{who.label} ({who.role.value}) lacks permission {need.action}", _detail(need))
        projects = await self.projects(scope, need, params)
        for project in projects:
            if not who.can(need.action, project):
                return (
                    f"{who.label} ({who.role.value}) lacks permission {need.action} in project {project!r}",
                    _detail(need, project),
                )
        return None

    async def projects(self, scope: Scope, need: Need, params: dict[str, Any]) -> list[str | None]:
        """The projects a route acts on: none for global routes; unknown objects are left to the route's 404."""
        if need.scope not in ("agent", "team") or "id" not in params:
            return []
        conn = HTTPConnection({**scope, "path_params": params})
        from api.context import deps

        d = deps(conn)
        if need.scope == "agent":
            try:
                return [(await d.agent(str(params["id"]))).spec.project]
            except NotFound:
                return []
        from api.errors import ApiError
        from api.routes.teams import find_team
        from controller.resources import Agent

        try:
            team, _ = await find_team(conn, str(params["id"]))
        except ApiError:
            return []
        agents = {a.name: a for a in await d.store.list(Agent, d.settings.namespace)}
        members = {entry.agent for entry in team.spec.agents.values()}
        return sorted({agents[m].spec.project if m in agents else None for m in members}, key=str)

    async def _watched(
        self, scope: Scope, receive: Receive, send: Send, token: str, need: Need | None, params: dict[str, Any]
    ) -> None:
        """Run a WebSocket route while re-checking its credential; close it when the credential dies."""
        state = {"open": False, "closed": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                state["open"] = True
            elif message["type"] == "websocket.close":
                state["closed"] = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, tracking_send))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self.recheck)
                if task.done():
                    break
                reason = await self._still_allowed(scope, token, need, params)
                if reason is None:
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                if state["open"] and not state["closed"]:
                    code, message = reason
                    frame = {"role": "system", "error": "unauthorized", "content": message}
                    with contextlib.suppress(Exception):
                        await send({"type": "websocket.send", "text": json.dumps(frame)})
                        await send({"type": "websocket.close", "code": code, "reason": "credential revoked"})
                return
            await task
        finally:
            if not task.done():
                task.cancel()

    async def _still_allowed(
        self, scope: Scope, token: str, need: Need | None, params: dict[str, Any]
    ) -> tuple[int, str] | None:
        try:
            who = authenticate(self.auth, token)
        except AuthError as err:
            return WS_UNAUTHORIZED, str(err)
        if need is not None:
            missing = await self.missing(scope, need, params, who)
            if missing is not None:
                return WS_FORBIDDEN, missing[0]
        return None


def _detail(need: Need, project: str | None = None) -> dict[str, Any]:
    return {"missing_permission": need.action, "project": project}


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str, detail: Any) -> None:
    if scope["type"] == "http":
        body = json.dumps({"error": message, "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    # Accept first: a close before accept is an HTTP 403 that browsers hide; this way the client
    # gets a frame saying why and a 44xx close code.
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    frame = {"role": "system", "error": "unauthorized" if status == 401 else "forbidden", "content": message}
    if detail:
        frame["detail"] = detail
    await send({"type": "websocket.send", "text": json.dumps(frame)})
    code = WS_UNAUTHORIZED if status == 401 else WS_FORBIDDEN
    await send({"type": "websocket.close", "code": code, "reason": "unauthorized" if status == 401 else "forbidden"})
