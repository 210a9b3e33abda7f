"""System routes: liveness, the catalog, runtime status, usage, Prometheus metrics, the schema.

/health and /metrics are public: the first is for load balancers and `make up` scripts, the second
for a Prometheus scraper on the same host (the gateway listens on 127.0.0.1 by default, and the
metrics hold counts and timings, no names of agents or secrets).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.context import Deps, deps
from api.convert import status_name
from api.openapi import Operation, build_openapi, operation
from api.permissions import AGENTS_READ, PUBLIC, SYSTEM_READ, Route, need, principal
from api.routes.agents import metrics_out
from api.schemas import AgentMetricsOut, CatalogEntryOut, GlobalMetricsOut, HealthOut, RuntimeStatusOut, TemplateOut
from api.usage import USAGE_DEADLINE_SECONDS, within
from controller import __version__
from controller.metrics import REGISTRY, agents_by_phase
from controller.resources import Agent, Phase
from controller.runtime.base import RuntimeError_, RuntimeUnavailable
from controller.warm_pool.status import with_pools

TAGS = ("system",)


@operation(Operation("Liveness of the gateway", response=HealthOut, public=True, tags=TAGS))
async def health(request: Request) -> JSONResponse:
    return JSONResponse(HealthOut(version=__version__).model_dump())


def _entries(items: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in sorted(items.items()):
        data = value.model_dump(mode="json") if hasattr(value, "model_dump") else dict(value)
        out.append({**data, "id": key})
    return out


@operation(Operation("Agent templates (agents.yaml) and their warm pools", response=list[TemplateOut], tags=TAGS))
async def templates(request: Request) -> JSONResponse:
    d = deps(request)
    # warmPool templates show their pool as the pool task last reported it (controller.warm_pool.status).
    home = d.settings.ensure_home()
    return JSONResponse(await asyncio.to_thread(with_pools, _entries(d.catalog.templates), home, d.runtime.name))


@operation(Operation("Model providers (templates/providers.yaml)", response=list[CatalogEntryOut], tags=TAGS))
async def providers(request: Request) -> JSONResponse:
    return JSONResponse(_entries(deps(request).catalog.providers))


@operation(Operation("Runtime, its version, agent counts and the store kind", response=RuntimeStatusOut, tags=TAGS))
async def runtime_status(request: Request) -> JSONResponse:
    d = deps(request)
    agents = await d.store.list(Agent, d.settings.namespace)
    version, error = None, None
    try:
        version = await d.runtime.version()
    except RuntimeError_ as err:
        error = str(err)
    out = RuntimeStatusOut(
        runtime=d.runtime.name,
        version=version,
        available=error is None,
        error=error,
        store=getattr(d.store, "kind_name", type(d.store).__name__),
        instance=d.settings.instance,
        agents_total=len(agents),
        agents_running=sum(1 for a in agents if status_name(a) == "running"),
    )
    return JSONResponse(out.model_dump())


@operation(Operation("Resource usage of every running agent", response=GlobalMetricsOut, errors=(503,), tags=TAGS))
async def usage(request: Request) -> JSONResponse:
    d = deps(request)
    who = principal(request)
    summary = await d.usage.get(lambda: _gather_usage(d))
    visible = {a.name for a in await d.store.list(Agent, d.settings.namespace) if who.in_project(a.spec.project)}
    return JSONResponse(_visible(summary, visible))


def _visible(summary: dict[str, Any], visible: set[str]) -> dict[str, Any]:
    """The shared summary cut down to the agents the caller may see (lists show only what it may)."""
    agents = [m for m in summary["agents"] if m["id"] in visible]
    return {
        **{k: v for k, v in summary.items() if k != "running_names"},
        "agents_total": len(visible),
        "agents_running": sum(1 for name in summary["running_names"] if name in visible),
        "memory_mb_total": round(sum(m["memory_mb"] for m in agents), 2),
        "cpu_percent_total": round(sum(m["cpu_percent"] for m in agents), 2),
        "agents": agents,
    }


async def _gather_usage(d: Deps) -> dict[str, Any]:
    agents = await d.store.list(Agent, d.settings.namespace)
    running = [a for a in agents if status_name(a) == "running"]

    async def one(agent: Agent) -> AgentMetricsOut:
        return metrics_out(agent.name, await d.runtime.stats(agent.key))

    found: list[AgentMetricsOut] = []
    for result in await within(USAGE_DEADLINE_SECONDS, [one(a) for a in running]):
        if isinstance(result, RuntimeUnavailable):
            raise result
        if isinstance(result, BaseException):
            continue  # stopped between the list and the stats call, or the engine timed out
        found.append(result)
    out = GlobalMetricsOut(
        agents_total=len(agents),
        agents_running=len(running),
        memory_mb_total=round(sum(m.memory_mb for m in found), 2),
        cpu_percent_total=round(sum(m.cpu_percent for m in found), 2),
        agents=found,
    )
    return {**out.model_dump(mode="json"), "running_names": [a.name for a in running]}


@operation(
    Operation(
        "Prometheus metrics (text exposition format)",
        response=str,
        public=True,
        media_type=CONTENT_TYPE_LATEST,
        tags=TAGS,
    )
)
async def prometheus(request: Request) -> Response:
    d = deps(request)
    # Refreshed here, so the gauge is right even when the controller runs in another process.
    agents = await d.store.list(Agent, d.settings.namespace)
    for phase in Phase:
        agents_by_phase.labels(phase.value.lower()).set(sum(1 for a in agents if status_name(a) == phase.value.lower()))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build_openapi(request.app.routes))


ROUTES = [
    Route("/health", health, methods=["GET"], permission=PUBLIC),
    Route("/api/templates", templates, methods=["GET"], permission=need(SYSTEM_READ)),
    Route("/api/providers", providers, methods=["GET"], permission=need(SYSTEM_READ)),
    Route("/api/runtime/status", runtime_status, methods=["GET"], permission=need(SYSTEM_READ)),
    Route("/api/metrics", usage, methods=["GET"], permission=need(AGENTS_READ)),
    Route("/metrics", prometheus, methods=["GET"], permission=PUBLIC),
    Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False, permission=PUBLIC),
]
