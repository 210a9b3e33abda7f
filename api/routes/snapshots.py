"""Snapshot, restore, clone, export and import endpoints.

Copying volumes is slow blocking Docker work, so it runs in a worker thread; the event loop keeps
serving chats meanwhile. Export streams a real archive (the original answered with an empty body);
import spools the upload to disk, then verifies all of it (sha256 and every entry) before any agent
or volume is created, so a corrupt upload is a 422 and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets as pysecrets
from datetime import datetime
from typing import Any

import docker.errors
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from api.context import deps, parse_body
from api.convert import agent_out
from api.errors import ApiError, invalid
from api.openapi import Operation, Query, operation
from api.schemas import AgentOut
from controller.archive import ArchiveError, verify_data_tar
from controller.resources import DNS1123_LABEL, Agent
from controller.snapshot_export import clone_agent, export_chunks, import_agent
from controller.snapshots import SnapshotError, SnapshotInfo, Snapshots
from controller.store.base import NotFound

TAGS = ("snapshots",)
MAX_IMPORT_BYTES = 64 * 1024**3  # the gateway's 1 MiB body limit does not apply to archives


class SnapshotOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    agent_id: str
    created_at: datetime
    size_bytes: int
    sha256: str = Field(description="sha256 of the snapshot's data archive, checked before every restore")


class CloneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the new agent's name (DNS-1123 label)", max_length=63)


def snapshots(request: Request) -> Snapshots:
    state = request.app.state
    if getattr(state, "snapshots", None) is None:
        state.snapshots = Snapshots(deps(request).settings)
    return state.snapshots  # type: ignore[no-any-return]


def _out(info: SnapshotInfo, status: int = 200) -> JSONResponse:
    return JSONResponse(SnapshotOut(**info.public()).model_dump(mode="json"), status_code=status)


def _api_error(err: Exception) -> ApiError:
    if isinstance(err, SnapshotError | ArchiveError):
        return ApiError(err.status, str(err))
    # The engine is down or refused: the same answer the runtime's errors get.
    return ApiError(503, "runtime unavailable", f"Docker engine: {err}".splitlines()[0])


async def _run(fn: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args)
    except (SnapshotError, ArchiveError, docker.errors.DockerException) as err:
        raise _api_error(err) from None


@operation(
    Operation(
        "Snapshot an agent's /data and /workspace now (paused around the copy)",
        response=SnapshotOut,
        status=201,
        errors=(409, 503),
        tags=TAGS,
    )
)
async def create_snapshot(request: Request) -> JSONResponse:
    agent = await deps(request).agent(request.path_params["id"])
    return _out(await _run(snapshots(request).create, agent), 201)


@operation(Operation("List an agent's snapshots, newest first", response=list[SnapshotOut], tags=TAGS))
async def list_snapshots(request: Request) -> JSONResponse:
    agent = await deps(request).agent(request.path_params["id"])
    infos = await _run(snapshots(request).list, agent.name)
    return JSONResponse([SnapshotOut(**i.public()).model_dump(mode="json") for i in infos])


@operation(Operation("One snapshot's metadata", response=SnapshotOut, tags=TAGS))
async def get_snapshot(request: Request) -> JSONResponse:
    agent = await deps(request).agent(request.path_params["id"])
    return _out(await _run(snapshots(request).get, agent.name, request.path_params["sid"]))


@operation(
    Operation(
        "Restore an agent's volumes from a snapshot (verified first; the agent keeps its running state)",
        response=SnapshotOut,
        errors=(409, 422, 503),
        tags=TAGS,
    )
)
async def restore_snapshot(request: Request) -> JSONResponse:
    agent = await deps(request).agent(request.path_params["id"])
    info = await _run(snapshots(request).restore, agent.name, request.path_params["sid"], agent.metadata.namespace)
    return _out(info)


@operation(Operation("Delete a snapshot", response=None, status=204, tags=TAGS))
async def delete_snapshot(request: Request) -> Response:
    agent = await deps(request).agent(request.path_params["id"])
    await _run(snapshots(request).delete, agent.name, request.path_params["sid"])
    return Response(status_code=204)


@operation(
    Operation(
        "Create a new agent from a snapshot",
        body=CloneIn,
        response=AgentOut,
        status=201,
        errors=(400, 409, 503),
        tags=TAGS,
    )
)
async def clone_snapshot(request: Request) -> JSONResponse:
    d = deps(request)
    agent = await d.agent(request.path_params["id"])
    body = await parse_body(request, CloneIn)
    if not DNS1123_LABEL.match(body.name):
        raise invalid([{"field": "name", "message": "must be a DNS-1123 label"}])
    try:
        created = await clone_agent(d.store, snapshots(request), agent.name, request.path_params["sid"], body.name)
    except (SnapshotError, ArchiveError, docker.errors.DockerException) as err:
        raise _api_error(err) from None
    return JSONResponse(agent_out(created).model_dump(mode="json"), status_code=201)


async def fill_from_snapshot(request: Request, agent: Agent, ref: str) -> None:
    """For POST /api/agents with from_snapshot "AGENT/ID": the new agent's volumes get the snapshot's
    data before its spec is stored (so the controller starts it on that data)."""
    source, _, sid = ref.partition("/")
    if not DNS1123_LABEL.match(source) or not sid:
        raise invalid([{"field": "from_snapshot", "message": "must be AGENT/SNAPSHOT_ID"}])
    d = deps(request)
    try:
        await d.store.get(Agent, agent.name, agent.metadata.namespace)
    except NotFound:
        pass
    else:
        raise ApiError(409, f"agent {agent.name!r} already exists")
    snaps = snapshots(request)
    info = await _run(snaps.get, source, sid)
    data = snaps.root / source / info.id / "data.tar"
    await _run(verify_data_tar, data, info.sha256)
    await _run(snaps.fill_volumes, f"{agent.metadata.namespace}/{agent.name}", data)


@operation(
    Operation(
        "Export an agent: a fresh snapshot with its spec, as one tar archive",
        response=bytes,
        media_type="application/x-tar",
        errors=(409, 503),
        tags=TAGS,
    )
)
async def export_agent(request: Request) -> Response:
    agent = await deps(request).agent(request.path_params["id"])
    snaps = snapshots(request)
    info = await _run(snaps.create, agent)
    return StreamingResponse(
        export_chunks(snaps, agent.name, info.id),
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f'attachment; filename="{agent.name}.clawpen.tar"',
            "X-Clawpen-Snapshot": info.id,
        },
    )


@operation(
    Operation(
        "Import an agent from an export archive (request body: the tar)",
        response=AgentOut,
        status=201,
        errors=(400, 409, 413, 422, 503),
        query=(Query("name", {"type": "string"}, "import under another name"),),
        tags=TAGS,
    )
)
async def import_agent_route(request: Request) -> JSONResponse:
    d = deps(request)
    name = request.query_params.get("name") or None
    if name is not None and not DNS1123_LABEL.match(name):
        raise invalid([{"field": "name", "message": "must be a DNS-1123 label"}])
    snaps = snapshots(request)
    spool_dir = snaps.root / ".uploads"
    spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    spool = spool_dir / f"import-{pysecrets.token_hex(6)}.tar"
    try:
        limit, received = d.settings.import_max_bytes, 0
        with spool.open("wb") as fh:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise ApiError(413, f"the archive is larger than {limit} bytes (CLAWPEN_IMPORT_MAX_BYTES)")
                await asyncio.to_thread(fh.write, chunk)
        if spool.stat().st_size == 0:
            raise ApiError(400, "request body is required: the archive made by export")
        with spool.open("rb") as src:
            try:
                created = await import_agent(d.store, snaps, src, name, max_bytes=limit)
            except (SnapshotError, ArchiveError) as err:
                raise ApiError(err.status, str(err)) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(spool)
    return JSONResponse(agent_out(created).model_dump(mode="json"), status_code=201)


ROUTES = [
    Route("/api/agents/import", import_agent_route, methods=["POST"], max_body_size=MAX_IMPORT_BYTES),
    Route("/api/agents/{id}/export", export_agent, methods=["GET"]),
    Route("/api/agents/{id}/snapshots", list_snapshots, methods=["GET"]),
    Route("/api/agents/{id}/snapshots", create_snapshot, methods=["POST"]),
    Route("/api/agents/{id}/snapshots/{sid}", get_snapshot, methods=["GET"]),
    Route("/api/agents/{id}/snapshots/{sid}", delete_snapshot, methods=["DELETE"]),
    Route("/api/agents/{id}/snapshots/{sid}/restore", restore_snapshot, methods=["POST"]),
    Route("/api/agents/{id}/snapshots/{sid}/clone", clone_snapshot, methods=["POST"]),
]
