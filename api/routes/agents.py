"""/api/agents: the seed's agent endpoints as spec writes and status reads.

Nothing here starts, stops or creates a container. Create, update, start and stop change the Agent's
spec in the store and answer at once (201/202); the controller notices and makes it true, and the
status a client polls says how far it got. The runtime is read only for what is not state: logs,
stats and health.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict

import httpx
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.context import Deps, deps, parse_body, query_int
from api.convert import agent_from_create, agent_from_update, agent_out, desired_state, status_name
from api.errors import ApiError, invalid
from api.openapi import Operation, Query, operation
from api.paging import PAGE_QUERY, paginate
from api.permissions import AGENTS_READ, AGENTS_WRITE, Route, need, principal, require
from api.render_cache import PageCache, RenderCache
from api.schemas import (
    ActionOut,
    AgentCreate,
    AgentHealthOut,
    AgentMetricsOut,
    AgentOut,
    AgentUpdate,
    BulkActionOut,
    EventOut,
    LogLineOut,
)
from controller.catalog import unknown_names
from controller.events import EventLog
from controller.interpolate import VarPolicy
from controller.labels import matches, parse_selector
from controller.resources import Agent, DesiredState
from controller.runtime.base import Stats
from controller.store.base import Conflict, list_shared
from controller.volume_policy import spec_policy_errors

TAGS = ("agents",)
LIST_FILTERS = (
    Query("project", {"type": "string"}, "only agents of this project"),
    Query("status", {"type": "string", "enum": ["pending", "starting", "running", "stopped", "failed", "suspended"]}),
    Query("tag", {"type": "string"}, "only agents carrying this tag"),
    Query("labelSelector", {"type": "string"}, "kubectl's grammar: k=v, k!=v, k, !k (comma = and)"),
    *PAGE_QUERY,
)
LOGS_TIMEOUT = 15.0
STATUSES = ("pending", "starting", "running", "stopped", "failed", "suspended")


_RENDERED = RenderCache(lambda a: agent_out(a).model_dump_json())
_PAGES = PageCache()


def _json(model: BaseModel, status: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


def _check_catalog(d: Deps, agent: Agent) -> None:
    """Unknown template/provider keys are a client error now, not a Failed agent later."""
    fields = {"template": "template", "provider": "config.llm_provider"}
    errors = [
        {"field": fields[field], "message": message}
        for field, message in unknown_names(d.catalog, agent.spec.template, agent.spec.provider)
    ]
    errors += spec_policy_errors(
        agent.spec, d.settings.volume_policy(), VarPolicy(names=d.settings.interpolation_allow())
    )
    if errors:
        raise invalid(errors)


@operation(Operation("List agents", response=list[AgentOut], query=LIST_FILTERS, errors=(422,), tags=TAGS))
async def list_agents(request: Request) -> Response:
    d = deps(request)
    agents = await list_shared(d.store, Agent, d.settings.namespace)  # read only: shared, not re-validated
    who = principal(request)
    # What the answer depends on besides the list: who may see which projects, and the query.
    key = (who.projects, request.scope.get("query_string", b""))
    hit = _PAGES.get(key, agents)
    if hit is not None:  # only answers that passed the checks below are kept
        return Response(hit[0], media_type="application/json", headers=hit[1])
    project = request.query_params.get("project")
    status = request.query_params.get("status")
    tag = request.query_params.get("tag")
    if status is not None and status not in STATUSES:
        raise invalid([{"field": "status", "message": f"must be one of {', '.join(STATUSES)}"}])
    try:
        selector = parse_selector(request.query_params.get("labelSelector"))
    except ValueError as err:
        raise invalid([{"field": "labelSelector", "message": str(err)}]) from None
    wanted = [
        a
        for a in sorted(agents, key=lambda a: a.name)
        if who.in_project(a.spec.project)  # a list shows only what the caller may see
        and (project is None or a.spec.project == project)
        and (status is None or status_name(a) == status)
        and (tag is None or tag in a.spec.tags)
        and matches(a.metadata.labels, selector)
    ]
    page, headers = paginate(request, wanted, lambda a: a.name)
    body = _RENDERED.array(page)
    _PAGES.put(key, agents, body, headers)
    return Response(body, media_type="application/json", headers=headers)


@operation(
    Operation(
        "Create an agent (the controller starts it)",
        body=AgentCreate,
        response=AgentOut,
        status=201,
        errors=(400, 404, 409, 503),
        tags=TAGS,
    )
)
async def create_agent(request: Request) -> JSONResponse:
    d = deps(request)
    body = await parse_body(request, AgentCreate)
    agent = agent_from_create(body, d.settings.namespace)
    require(request, AGENTS_WRITE, agent.spec.project)
    request.scope["clawpen.object"] = agent.name
    _check_catalog(d, agent)
    if body.from_snapshot:
        from api.routes.snapshots import fill_from_snapshot

        await fill_from_snapshot(request, agent, body.from_snapshot)
    created = await d.store.create(agent)
    return _json(agent_out(created), 201)


@operation(Operation("Get one agent, with its status and conditions", response=AgentOut, tags=TAGS))
async def get_agent(request: Request) -> JSONResponse:
    d = deps(request)
    return _json(agent_out(await d.agent(request.path_params["id"])))


@operation(
    Operation(
        "Update an agent: config replaced, env_vars merged",
        body=AgentUpdate,
        response=AgentOut,
        errors=(400, 409),
        tags=TAGS,
    )
)
async def update_agent(request: Request) -> JSONResponse:
    d = deps(request)
    body = await parse_body(request, AgentUpdate)
    # Without resource_version the update applies to whatever is current: a stale read (the controller
    # or another client wrote in between) is re-read and re-applied, with a growing, jittered pause so
    # concurrent writers spread out instead of colliding again (5 tries × 10 ms still gave 409s).
    for attempt in range(UPDATE_ATTEMPTS):
        current = await d.agent(request.path_params["id"])
        updated = agent_from_update(current, body)
        require(request, AGENTS_WRITE, updated.spec.project)  # moving it needs the new project too
        _check_catalog(d, updated)
        try:
            return _json(agent_out(await d.store.replace(updated)))
        except Conflict:
            if body.resource_version is not None:
                raise  # the client asked for exactly that version: a stale one is its 409
            await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
    raise ApiError(409, f"agent {request.path_params['id']!r} kept changing; try again")


UPDATE_ATTEMPTS = 20


@operation(
    Operation(
        "Delete an agent (the controller removes its container; ?volumes=true also removes its /data and "
        "/workspace volumes, which are kept by default)",
        response=None,
        status=204,
        errors=(400, 409, 503),
        query=(Query("volumes", {"type": "boolean"}, "also remove the agent's volumes"),),
        tags=TAGS,
    )
)
async def delete_agent(request: Request) -> Response:
    d = deps(request)
    raw = request.query_params.get("volumes", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise invalid([{"field": "volumes", "message": "must be true or false"}])
    agent = await d.agent(request.path_params["id"])
    await d.store.delete(Agent, agent.name, agent.metadata.namespace)
    if raw in ("true", "1"):
        # The controller may be removing (or still replacing) the container right now: the runtime
        # removes it too and retries until the volumes are free.
        await d.runtime.remove(agent.key, volumes=True)
    return Response(status_code=204)


async def _set_state(d: Deps, name: str, state: DesiredState) -> Agent:
    """Patch spec.state, retrying when the controller or another client wrote in between."""
    for _ in range(5):
        agent = await d.agent(name)
        if agent.spec.state == state:
            return agent
        agent.spec.state = state
        try:
            return await d.store.replace(agent)
        except Conflict:
            await asyncio.sleep(0.01)
    raise ApiError(409, f"agent {name!r} kept changing; try again")


def _action(agent: Agent) -> JSONResponse:
    out = ActionOut(
        id=agent.name,
        status=status_name(agent),
        desired_state=desired_state(agent),
    )
    return _json(out, 202)


@operation(Operation("Start an agent (desired state Running)", response=ActionOut, status=202, tags=TAGS))
async def start_agent(request: Request) -> JSONResponse:
    return _action(await _set_state(deps(request), request.path_params["id"], DesiredState.RUNNING))


@operation(Operation("Stop an agent (desired state Stopped)", response=ActionOut, status=202, tags=TAGS))
async def stop_agent(request: Request) -> JSONResponse:
    return _action(await _set_state(deps(request), request.path_params["id"], DesiredState.STOPPED))


async def _bulk(request: Request, state: DesiredState) -> JSONResponse:
    d = deps(request)
    project = request.query_params.get("project")
    agents = await d.store.list(Agent, d.settings.namespace)
    who = principal(request)
    names = sorted(
        a.name
        for a in agents
        if (project is None or a.spec.project == project) and who.can(AGENTS_WRITE, a.spec.project or "default")
    )
    for name in names:
        await _set_state(d, name, state)
    out = BulkActionOut(
        desired_state="running" if state == DesiredState.RUNNING else "stopped",
        project=project,
        agents=names,
        count=len(names),
    )
    return _json(out, 202)


PROJECT_FILTER = (Query("project", {"type": "string"}, "only agents of this project"),)


@operation(
    Operation(
        "Start every agent (of a project)",
        response=BulkActionOut,
        status=202,
        query=PROJECT_FILTER,
        tags=TAGS,
    )
)
async def start_all(request: Request) -> JSONResponse:
    return await _bulk(request, DesiredState.RUNNING)


@operation(
    Operation("Stop every agent (of a project)", response=BulkActionOut, status=202, query=PROJECT_FILTER, tags=TAGS)
)
async def stop_all(request: Request) -> JSONResponse:
    return await _bulk(request, DesiredState.STOPPED)


@operation(
    Operation(
        "The container's recent log lines",
        response=list[LogLineOut],
        errors=(409, 422, 503, 504),
        query=(Query("tail", {"type": "integer", "minimum": 1, "maximum": 10000}, "lines, default 100"),),
        tags=TAGS,
    )
)
async def agent_logs(request: Request) -> JSONResponse:
    d = deps(request)
    tail = query_int(request, "tail", 100, 1, 10_000)
    agent = await d.agent(request.path_params["id"])
    lines: list[dict[str, object]] = []
    try:
        # A one-shot read must end; if the engine stalls, answer rather than hold the client forever.
        async with asyncio.timeout(LOGS_TIMEOUT):
            async for line in d.runtime.logs(agent.key, tail=tail, follow=False):
                lines.append(
                    LogLineOut(
                        timestamp=line.timestamp, level=line.level, message=line.message, stream=line.stream
                    ).model_dump(mode="json")
                )
    except TimeoutError:
        raise ApiError(504, f"the runtime did not return the logs within {LOGS_TIMEOUT:.0f} s") from None
    return JSONResponse(lines[-tail:])


def metrics_out(name: str, stats: Stats) -> AgentMetricsOut:
    return AgentMetricsOut(
        id=name,
        memory_mb=round(stats.memory_mb, 2),
        memory_limit_mb=stats.memory_limit_mb,
        cpu_percent=round(stats.cpu_percent, 2),
        network_rx_bytes=stats.network_rx_bytes,
        network_tx_bytes=stats.network_tx_bytes,
        pids=stats.pids,
    )


@operation(Operation("The container's resource usage", response=AgentMetricsOut, errors=(409, 503), tags=TAGS))
async def agent_metrics(request: Request) -> JSONResponse:
    d = deps(request)
    agent = await d.agent(request.path_params["id"])
    return _json(metrics_out(agent.name, await d.runtime.stats(agent.key)))


@operation(Operation("Is the agent running and answering /healthz", response=AgentHealthOut, errors=(503,), tags=TAGS))
async def agent_health(request: Request) -> JSONResponse:
    d = deps(request)
    agent = await d.agent(request.path_params["id"])
    observed = await d.runtime.observe(agent.key)
    endpoint = (agent.status.endpoint if agent.status else None) or observed.endpoint
    healthy: bool | None = None
    detail = observed.error
    if observed.running and endpoint and d.http is not None:
        try:
            answer = await d.http.get(f"{endpoint.rstrip('/')}/healthz", timeout=3.0)
            healthy = answer.status_code == 200
            detail = None if healthy else f"/healthz answered {answer.status_code}"
        except httpx.HTTPError as err:
            healthy, detail = False, f"/healthz unreachable: {type(err).__name__}"
    elif not observed.running:
        detail = detail or f"workload is {observed.state}"
    out = AgentHealthOut(
        id=agent.name,
        status=status_name(agent),
        running=observed.running,
        healthy=healthy,
        endpoint=endpoint,
        detail=detail,
    )
    return _json(out)


@operation(
    Operation(
        "What the controller did with the agent and why (newest last)",
        response=list[EventOut],
        query=(Query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "default 20"),),
        tags=TAGS,
    )
)
async def agent_events(request: Request) -> JSONResponse:
    d = deps(request)
    limit = query_int(request, "limit", 20, 1, 50)
    agent = await d.agent(request.path_params["id"])
    log = EventLog(d.settings.home / "events")
    found = await asyncio.to_thread(log.recent, agent.key, limit)
    return JSONResponse([EventOut(**asdict(e)).model_dump(mode="json") for e in found])


ROUTES = [
    Route("/api/agents", list_agents, methods=["GET"], permission=need(AGENTS_READ)),
    Route("/api/agents", create_agent, methods=["POST"], permission=need(AGENTS_WRITE)),
    Route("/api/agents/start-all", start_all, methods=["POST"], permission=need(AGENTS_WRITE)),
    Route("/api/agents/stop-all", stop_all, methods=["POST"], permission=need(AGENTS_WRITE)),
    Route("/api/agents/{id}", get_agent, methods=["GET"], permission=need(AGENTS_READ, "agent")),
    Route("/api/agents/{id}", update_agent, methods=["PUT"], permission=need(AGENTS_WRITE, "agent")),
    Route("/api/agents/{id}", delete_agent, methods=["DELETE"], permission=need(AGENTS_WRITE, "agent")),
    Route("/api/agents/{id}/start", start_agent, methods=["POST"], permission=need(AGENTS_WRITE, "agent")),
    Route("/api/agents/{id}/stop", stop_agent, methods=["POST"], permission=need(AGENTS_WRITE, "agent")),
    Route("/api/agents/{id}/logs", agent_logs, methods=["GET"], permission=need(AGENTS_READ, "agent")),
    Route("/api/agents/{id}/metrics", agent_metrics, methods=["GET"], permission=need(AGENTS_READ, "agent")),
    Route("/api/agents/{id}/health", agent_health, methods=["GET"], permission=need(AGENTS_READ, "agent")),
    Route("/api/agents/{id}/events", agent_events, methods=["GET"], permission=need(AGENTS_READ, "agent")),
]
