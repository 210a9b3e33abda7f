"""/api/secrets and /api/agents/{id}/secrets: the seed's secret endpoints over the encrypted store.

Values go in and never come out: every response is metadata (name, scope, version, sizes, times).
A bad name or value is a 422 naming the rule; the value itself is never echoed, not even in an
error (pydantic's input is left out of field errors, and the store's messages never hold values).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.context import deps, parse_body
from api.errors import ApiError, invalid
from api.openapi import Operation, operation
from api.permissions import GLOBAL_SECRETS, SECRETS_LIST, SECRETS_WRITE, Route, need
from controller.secrets import InvalidSecret, SecretError, SecretInfo, SecretStore

TAGS = ("secrets",)


class SecretCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="[A-Za-z0-9_.-]{1,64}, never '..'", max_length=256)
    value: str = Field(description="the secret (UTF-8, at most 64 KiB); never returned", max_length=1 << 20)


class SecretOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    scope: Literal["agent", "global"]
    agent: str | None
    version: str = Field(description="changes on every set; never derived from the value")
    created_at: datetime
    updated_at: datetime
    size_bytes: int


def secret_store(request: Request) -> SecretStore:
    """One store per app, opened on first use (the key file is created then, 0600)."""
    state = request.app.state
    if getattr(state, "secret_store", None) is None:
        state.secret_store = SecretStore.from_settings(deps(request).settings)
    return state.secret_store  # type: ignore[no-any-return]


def _out(info: SecretInfo, status: int = 200) -> JSONResponse:
    body = SecretOut(
        name=info.name,
        scope=info.scope,
        agent=info.agent,
        version=info.version,
        created_at=info.created_at,
        updated_at=info.updated_at,
        size_bytes=info.size_bytes,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def _api_error(err: SecretError) -> ApiError:
    if isinstance(err, InvalidSecret):
        return invalid([{"field": err.field, "message": str(err)}])
    return ApiError(err.status, str(err))


async def _agent_scope(request: Request) -> str:
    agent = await deps(request).agent(request.path_params["id"])  # 404 for an unknown agent
    return agent.name


async def _set(request: Request, agent: str | None) -> JSONResponse:
    body = await parse_body(request, SecretCreate)
    store = secret_store(request)
    try:
        info = await asyncio.to_thread(store.set, body.name, body.value.encode(), agent)
    except SecretError as err:
        raise _api_error(err) from None
    return _out(info, 201)


async def _list(request: Request, agent: str | None) -> JSONResponse:
    try:
        infos = await asyncio.to_thread(secret_store(request).list, agent)
    except SecretError as err:
        raise _api_error(err) from None
    return JSONResponse([SecretOut(**info.public()).model_dump(mode="json") for info in infos])


async def _delete(request: Request, agent: str | None) -> Response:
    try:
        await asyncio.to_thread(secret_store(request).delete, request.path_params["name"], agent)
    except InvalidSecret as err:
        raise ApiError(404, str(err)) from None  # a name no secret can have is simply not there
    except SecretError as err:
        raise _api_error(err) from None
    return Response(status_code=204)


@operation(Operation("List an agent's own secrets (never values)", response=list[SecretOut], tags=TAGS))
async def list_agent_secrets(request: Request) -> JSONResponse:
    return await _list(request, await _agent_scope(request))


@operation(
    Operation("Set an agent's secret", body=SecretCreate, response=SecretOut, status=201, errors=(400,), tags=TAGS)
)
async def set_agent_secret(request: Request) -> JSONResponse:
    return await _set(request, await _agent_scope(request))


@operation(Operation("Delete an agent's secret", response=None, status=204, tags=TAGS))
async def delete_agent_secret(request: Request) -> Response:
    return await _delete(request, await _agent_scope(request))


@operation(Operation("List global secrets (never values)", response=list[SecretOut], tags=TAGS))
async def list_global_secrets(request: Request) -> JSONResponse:
    return await _list(request, None)


@operation(
    Operation("Set a global secret", body=SecretCreate, response=SecretOut, status=201, errors=(400,), tags=TAGS)
)
async def set_global_secret(request: Request) -> JSONResponse:
    return await _set(request, None)


@operation(Operation("Delete a global secret", response=None, status=204, tags=TAGS))
async def delete_global_secret(request: Request) -> Response:
    return await _delete(request, None)


ROUTES = [
    Route("/api/secrets", list_global_secrets, methods=["GET"], permission=need(GLOBAL_SECRETS)),
    Route("/api/secrets", set_global_secret, methods=["POST"], permission=need(GLOBAL_SECRETS)),
    Route("/api/secrets/{name}", delete_global_secret, methods=["DELETE"], permission=need(GLOBAL_SECRETS)),
    Route("/api/agents/{id}/secrets", list_agent_secrets, methods=["GET"], permission=need(SECRETS_LIST, "agent")),
    Route("/api/agents/{id}/secrets", set_agent_secret, methods=["POST"], permission=need(SECRETS_WRITE, "agent")),
    Route(
        "/api/agents/{id}/secrets/{name}", delete_agent_secret, methods=["DELETE"],
        permission=need(SECRETS_WRITE, "agent"),
    ),
]
