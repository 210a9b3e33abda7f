"""POST /api/apply: `clawpen apply -f` through the gateway (one manifest document per request).

Why a route of its own rather than POST/PUT /api/agents: those speak the seed's flat agent config,
which cannot carry a manifest's labels or annotations, and there is no REST write for a Team at all.
A manifest applied here goes through the same `apply_resource` as the local `clawpen apply`
(created / configured / unchanged, the whole spec replaced), after the checks a REST create makes:
the caller's role in the object's project (its current project too, when it moves), the catalog
names, the volume and interpolation policy. What only the machine's admin may decide stays so:
`spec.image` needs the admin role, a Team needs teams:write on every project (it spans projects,
like reloading the team files), the namespace is the gateway's, and store-owned metadata (uid,
resourceVersion, ...) and `status` in the document are ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.context import deps, parse_body
from api.errors import ApiError, invalid
from api.openapi import Operation, Query, operation
from api.permissions import AGENTS_WRITE, TEAMS_WRITE, Role, Route, need, principal, require
from api.routes.agents import _check_catalog
from controller.resources import Agent, ManifestError, ObjectMeta, Resource, Team, parse_resource
from controller.store.apply import apply_resource
from controller.store.base import Conflict, NotFound

TAGS = ("apply",)
ATTEMPTS = 5


class ManifestIn(BaseModel):
    """One manifest document, as `clawpen apply -f` reads it from YAML (here as JSON)."""

    model_config = ConfigDict(extra="allow")
    apiVersion: str = Field(description="clawpen.dev/v1alpha1")  # noqa: N815 (the manifest's own key)
    kind: Literal["Agent", "Team"]
    metadata: dict[str, Any] = Field(description="name (required), labels, annotations; namespace: the gateway's")
    spec: dict[str, Any] = Field(default_factory=dict)


class ApplyOut(BaseModel):
    kind: str
    name: str
    result: Literal["created", "configured", "unchanged"]
    dry_run: bool = False


def _resource(body: ManifestIn, namespace: str) -> Resource:
    given = body.metadata.get("namespace")
    if given not in (None, namespace):
        raise invalid([{"field": "metadata.namespace", "message": f"this gateway serves namespace {namespace!r}"}])
    doc = body.model_dump()
    doc.pop("status", None)  # the controller's to write
    try:
        obj = parse_resource(doc)
    except ManifestError as err:
        raise ApiError(422, f"invalid manifest: {err}") from None
    meta = obj.metadata
    obj.metadata = ObjectMeta(name=meta.name, namespace=namespace, labels=meta.labels, annotations=meta.annotations)
    return obj


@operation(
    Operation(
        "Apply one manifest (Agent or Team) as `clawpen apply -f` does: create it, or replace its spec, "
        "labels and annotations; answers created, configured or unchanged",
        body=ManifestIn,
        response=ApplyOut,
        errors=(400, 403, 409, 422),
        query=(Query("dryRun", {"type": "boolean"}, "validate and say what would change; write nothing"),),
        tags=TAGS,
    )
)
async def apply_manifest(request: Request) -> JSONResponse:
    d = deps(request)
    dry_run = request.query_params.get("dryRun", "false").lower() in ("true", "1")
    obj = _resource(await parse_body(request, ManifestIn), d.settings.namespace)
    request.scope["clawpen.object"] = obj.name
    if isinstance(obj, Team):
        require(request, TEAMS_WRITE, everywhere=True)  # a team spans its agents' projects
    elif isinstance(obj, Agent):
        require(request, AGENTS_WRITE, obj.spec.project)
        try:
            current = await d.store.get(Agent, obj.name, d.settings.namespace)
            require(request, AGENTS_WRITE, current.spec.project)  # moving it needs the old project too
            image_changes = obj.spec.image != current.spec.image
        except NotFound:
            image_changes = obj.spec.image is not None
        who = principal(request)
        if image_changes and who.role != Role.ADMIN:
            raise ApiError(
                403,
                f"{who.label} ({who.role.value}) may not set spec.image through the gateway (admins only)",
                detail={"missing_permission": "admin", "project": obj.spec.project},
            )
        _check_catalog(d, obj)
    for _ in range(ATTEMPTS):  # the controller may write the object's status in between
        try:
            result = await apply_resource(d.store, obj, dry_run=dry_run)
            break
        except Conflict:
            await asyncio.sleep(0.02)
    else:
        raise ApiError(409, f"{obj.KIND.lower()} {obj.name!r} kept changing; try again")
    out = ApplyOut(kind=obj.KIND, name=obj.name, result=result, dry_run=dry_run)  # type: ignore[arg-type]
    return JSONResponse(out.model_dump(mode="json"))


ROUTES = [Route("/api/apply", apply_manifest, methods=["POST"], permission=need(AGENTS_WRITE))]
