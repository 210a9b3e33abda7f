"""/api/users, /api/tokens and /api/audit: who may do what, their API tokens, and what they did.

Users are managed by admins; everyone manages their own API tokens (an admin sees and revokes all).
A token is capped by its owner: asking for a higher role or a project the owner lacks is a 403, and
at use the owner's current rights cap it again (api.guard). The token value is in the 201 answer
and nowhere else: the store keeps its hash.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.context import deps, parse_body, query_int
from api.errors import ApiError
from api.openapi import Operation, Query, operation
from api.permissions import (
    ALL,
    AUDIT_READ,
    ROLE_ACTIONS,
    ROLE_RANK,
    TOKENS_OWN,
    USERS_MANAGE,
    Role,
    Route,
    forbidden,
    need,
    principal,
)
from api.schemas import Body, Out
from controller.users.store import ADMIN_NAME, User

TAGS = ("users",)
Projects = Field(default_factory=lambda: [ALL], description="projects granted ('*' = all)", max_length=100)


class UserCreate(Body):
    name: str = Field(max_length=64)
    password: str | None = Field(default=None, min_length=12, max_length=1024, description="never returned")
    role: Role = Role.VIEWER
    projects: list[str] = Projects


class UserPatch(Body):
    role: Role | None = None
    projects: list[str] | None = Field(default=None, max_length=100)
    enabled: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)
    resource_version: int | None = Field(default=None, description="409 when the user changed since")


class UserOut(Out):
    name: str
    role: str
    projects: list[str]
    enabled: bool
    source: str
    has_password: bool
    resource_version: int
    created: float


class TokenCreate(Body):
    name: str = Field(min_length=1, max_length=64)
    role: Role | None = Field(default=None, description="at most the owner's role (default: the owner's)")
    projects: list[str] | None = Field(default=None, max_length=100, description="within the owner's grants")
    expires_in: int | None = Field(default=None, ge=60, le=366 * 86400, description="seconds; none = never")


class TokenCreated(Out):
    id: str
    name: str
    token: str = Field(description="shown once; only its hash is stored")
    expires_at: float | None
    role: str
    projects: list[str]


class TokenOut(Out):
    id: str
    name: str
    owner: str
    role: str
    projects: list[str]
    created: float
    expires_at: float | None
    last_used: float | None


class MeOut(Out):
    name: str
    role: str
    projects: list[str]
    token: str | None = Field(description="the API token's name when the call came with one")
    permissions: list[str] = Field(description="the actions this role allows (in the projects above)")


class AuditOut(Out):
    time: float
    user: str | None
    source: str
    method: str
    route: str
    object: str | None
    status: int


def _admin_out(request: Request) -> dict[str, Any]:
    exists = deps(request).auth.admin.exists()
    return UserOut(
        name=ADMIN_NAME,
        role="admin",
        projects=[ALL],
        enabled=exists,
        source="built-in",
        has_password=exists,
        resource_version=0,
        created=0,
    ).model_dump()


@operation(Operation("List users (admin)", response=list[UserOut], tags=TAGS))
async def list_users(request: Request) -> JSONResponse:
    users = deps(request).auth.users.list()
    return JSONResponse([_admin_out(request)] + [u.public() for u in users])


@operation(Operation("Get a user (admin)", response=UserOut, errors=(404,), tags=TAGS))
async def get_user(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    if name == ADMIN_NAME:
        return JSONResponse(_admin_out(request))
    user = deps(request).auth.users.get(name)
    if user is None:
        raise ApiError(404, f"user {name!r} not found")
    return JSONResponse(user.public())


@operation(Operation("Add a user (admin)", body=UserCreate, response=UserOut, status=201, errors=(409, 422), tags=TAGS))
async def create_user(request: Request) -> JSONResponse:
    body = await parse_body(request, UserCreate)
    auth = deps(request).auth
    hashed = await asyncio.to_thread(auth.hash_password, body.password) if body.password else None
    try:
        user = User(name=body.name, role=body.role.value, projects=body.projects, password_hash=hashed)
    except ValueError as err:
        raise ApiError(422, f"invalid user: {err}") from None
    request.scope["clawpen.object"] = user.name
    created = await asyncio.to_thread(auth.users.create, user)
    return JSONResponse(created.public(), status_code=201)


@operation(
    Operation("Change a user's role, projects, password or enabled flag (admin)", body=UserPatch, response=UserOut,
              errors=(404, 409, 422), tags=TAGS)
)
async def update_user(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    if name == ADMIN_NAME:
        raise ApiError(409, "the built-in admin cannot be changed here (`clawpen admin set-password`)")
    body = await parse_body(request, UserPatch)
    auth = deps(request).auth
    changes: dict[str, Any] = body.model_dump(exclude_none=True, exclude={"password", "resource_version"})
    if "role" in changes:
        changes["role"] = body.role.value if body.role else None
    if body.password:
        changes["password_hash"] = await asyncio.to_thread(auth.hash_password, body.password)
    # Disabling ends sessions and stops the user's API tokens at once (the guard checks the owner on
    # every call); the tokens come back if the user is enabled again.
    user = await asyncio.to_thread(auth.users.update, name, changes, body.resource_version)
    return JSONResponse(user.public())


@operation(Operation("Delete a user and their API tokens (admin)", status=204, errors=(404, 409), tags=TAGS))
async def delete_user(request: Request) -> Response:
    name = request.path_params["name"]
    if name == ADMIN_NAME:
        raise ApiError(409, "the built-in admin cannot be deleted")
    auth = deps(request).auth
    await asyncio.to_thread(auth.users.delete, name)
    await asyncio.to_thread(auth.api_tokens.revoke_owner, name)
    return Response(status_code=204)


@operation(Operation("Who is calling: name, role, projects and what the role allows", response=MeOut, tags=TAGS))
async def me(request: Request) -> JSONResponse:
    """The dashboard asks this to show only the buttons the caller may use (the guard still decides)."""
    who = principal(request)
    out = MeOut(
        name=who.name,
        role=who.role.value,
        projects=sorted(who.projects),
        token=who.token,
        permissions=sorted(ROLE_ACTIONS[who.role]),
    )
    return JSONResponse(out.model_dump(), headers={"Cache-Control": "no-store"})


# ---- API tokens ---------------------------------------------------------------------------------


@operation(
    Operation("Create an API token (shown once)", body=TokenCreate, response=TokenCreated, status=201,
              errors=(403, 422), tags=TAGS)
)
async def create_token(request: Request) -> JSONResponse:
    who = principal(request)
    body = await parse_body(request, TokenCreate)
    role = body.role or who.role
    if ROLE_RANK[role] > ROLE_RANK[who.role]:
        raise forbidden(who, f"role {role.value} (above your own)")
    projects = body.projects if body.projects is not None else sorted(who.projects)
    if ALL not in who.projects:
        beyond = [p for p in projects if p not in who.projects]
        if beyond:
            raise forbidden(who, "grant", ", ".join(beyond))
    token, value = await asyncio.to_thread(
        deps(request).auth.api_tokens.create, body.name, who.name, role.value, projects, body.expires_in
    )
    request.scope["clawpen.object"] = f"{token.name} ({token.id})"
    out = TokenCreated(
        id=token.id, name=token.name, token=value, expires_at=token.expires_at, role=token.role, projects=token.projects
    )
    return JSONResponse(out.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


@operation(Operation("List API tokens (yours; an admin sees all)", response=list[TokenOut], tags=TAGS))
async def list_tokens(request: Request) -> JSONResponse:
    who = principal(request)
    owner = None if who.can(USERS_MANAGE) else who.name
    return JSONResponse([t.public() for t in deps(request).auth.api_tokens.list(owner)])


@operation(Operation("Revoke an API token", status=204, errors=(403, 404), tags=TAGS))
async def revoke_token(request: Request) -> Response:
    who = principal(request)
    store = deps(request).auth.api_tokens
    token = store.get(request.path_params["id"])
    if token.owner != who.name and not who.can(USERS_MANAGE):
        raise ApiError(404, f"token {token.id!r} not found")  # someone else's tokens do not exist for you
    await asyncio.to_thread(store.revoke, token.id)
    return Response(status_code=204)


# ---- audit --------------------------------------------------------------------------------------

AUDIT_QUERY = (
    Query("user", {"type": "string"}, "only this user's entries"),
    Query("since", {"type": "number"}, "only entries at or after this Unix time"),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "newest N (default 100)"),
)


@operation(
    Operation("Read the audit log (admin)", response=list[AuditOut], query=AUDIT_QUERY, errors=(422,), tags=TAGS)
)
async def audit(request: Request) -> JSONResponse:
    limit = query_int(request, "limit", 100, 1, 10_000)
    since_raw = request.query_params.get("since")
    try:
        since = float(since_raw) if since_raw else None
    except ValueError:
        raise ApiError(422, "since must be a Unix time in seconds") from None
    user = request.query_params.get("user") or None
    found = await asyncio.to_thread(deps(request).auth.audit.query, user, since, limit)
    return JSONResponse(found)


ROUTES = [
    Route("/api/users", list_users, methods=["GET"], permission=need(USERS_MANAGE)),
    Route("/api/users", create_user, methods=["POST"], permission=need(USERS_MANAGE)),
    Route("/api/users/{name}", get_user, methods=["GET"], permission=need(USERS_MANAGE)),
    Route("/api/users/{name}", update_user, methods=["PATCH"], permission=need(USERS_MANAGE)),
    Route("/api/users/{name}", delete_user, methods=["DELETE"], permission=need(USERS_MANAGE)),
    Route("/api/me", me, methods=["GET"], permission=need(TOKENS_OWN)),
    Route("/api/tokens", list_tokens, methods=["GET"], permission=need(TOKENS_OWN)),
    Route("/api/tokens", create_token, methods=["POST"], permission=need(TOKENS_OWN)),
    Route("/api/tokens/{id}", revoke_token, methods=["DELETE"], permission=need(TOKENS_OWN)),
    Route("/api/audit", audit, methods=["GET"], permission=need(AUDIT_READ)),
]
