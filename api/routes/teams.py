"""/api/teams: the seed's team endpoints, and the routed team chat over a WebSocket.

Teams are Team resources in the store (`clawpen apply -f teams/` brings in the shipped examples), so
deleting one stops it being served. Only when CLAWPEN_TEAMS_DIR names a directory are the seed's
TOML files there served too (re-read whenever a file changes); a stored Team wins over a file of
the same name because applying it was the more deliberate act. A team's status is derived
on each read from the Agents it routes to, so "why does my team not answer" is one GET away.

Team chat: the client sends `{"content", "session"?}` frames, like agent chat. Each message is
classified (keyword, semantic, LLM or hybrid, per the team) and then either
  - answered with a clarification frame listing the options, with `done: true` since it ends the turn
    (the user's next message picks one, by name, agent or number, and the original message is
    forwarded), or
  - acknowledged with a routing frame `{routing_to, classification}`, followed by the chosen agent's
    streamed answer: the agent chat relay's own frames, each tagged with `from_agent`.
A follow-up in the same session stays with the same agent unless it clearly belongs elsewhere.
An agent that is missing or not running gets an error frame naming it; the team chat stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.approvals import ApprovalRouter
from api.context import Deps, deps, parse_body
from api.errors import ApiError
from api.openapi import Operation, operation
from api.paging import PAGE_QUERY, paginate
from api.permissions import TEAMS_CHAT, TEAMS_READ, TEAMS_WRITE, Route, WebSocketRoute, need, principal, require
from api.routes.secrets import secret_store
from api.routes.ws import error_frame, new_inbox, not_ready, now_iso, parse_chat_frame, read_client, relay
from api.schemas import ChatIn
from api.wake import wake_for_chat
from controller.resources import DNS1123_LABEL, Agent, Team
from controller.secrets import SecretError
from controller.store.base import NotFound, StoreError
from controller.teams.anchor_vectors import anchor_vectors_dir
from controller.teams.conversation import Clarify, Conversation
from controller.teams.conversation import Route as RouteTo
from controller.teams.learned import LearnedExamples, learned_dir
from controller.teams.llm_router import Complete, classify
from controller.teams.model import RouterModel, resolve_router_model
from controller.teams.registry import TeamRegistry
from controller.teams.router import Classification, KeywordRouter, agent_prefix
from controller.teams.semantic import SemanticRouter
from controller.teams.status import derive_team_status

log = logging.getLogger("clawpen.api.teams")
TAGS = ("teams",)
WS_UNKNOWN_TEAM = 4404


# ---- bodies and answers ---------------------------------------------------------------------------


class ClassifyIn(BaseModel):
    model_config = {"extra": "forbid"}
    message: str = Field(min_length=1, max_length=16_000)


class IntentScoreOut(BaseModel):
    intent: str
    score: float


class ClassificationOut(BaseModel):
    intent: str
    confidence: float = Field(ge=0, le=1)
    matched_keywords: list[str]
    needs_clarification: bool
    agent: str | None
    reasoning: str = Field(description="why: the keyword hit, the semantic margin, or the model's answer")
    method: str = Field(description="the stage that decided: keyword, semantic, llm, fallback, sticky, "
                        "clarify or user")
    mode: str = Field(default="", description="the team's router mode")
    top_intents: list[IntentScoreOut] = Field(
        default_factory=list, description="best intents with the deciding stage's scores, best first")


class TeamIntentOut(BaseModel):
    intent: str
    agent: str
    description: str
    keywords: list[str]
    examples: list[str]


class TeamStatusOut(BaseModel):
    phase: str
    message: str
    missing_agents: list[str]
    not_running_agents: list[str]


class TeamOut(BaseModel):
    id: str
    name: str
    description: str
    version: str | None
    source: str  # "file" (teams/*.toml) or "store" (an applied Team resource)
    mode: str
    confidence_threshold: float
    clarify_on_low_confidence: bool
    provider: str | None
    model: str | None
    fallback_intent: str | None
    intents: list[TeamIntentOut]
    status: TeamStatusOut


class TeamFileError(BaseModel):
    file: str
    message: str


class ReloadOut(BaseModel):
    teams: list[str]
    errors: list[TeamFileError]


# ---- where teams come from -------------------------------------------------------------------------


def registry(conn: HTTPConnection) -> TeamRegistry | None:
    """The app's team-directory registry (only with CLAWPEN_TEAMS_DIR), created on first use."""
    state = conn.app.state
    directory = deps(conn).settings.teams_dir
    if directory is None:
        return None
    if getattr(state, "team_registry", None) is None:
        state.team_registry = TeamRegistry(directory)
    return state.team_registry  # type: ignore[no-any-return]


async def all_teams(conn: HTTPConnection) -> dict[str, tuple[Team, str]]:
    d = deps(conn)
    files = registry(conn)
    out: dict[str, tuple[Team, str]] = {n: (t, "file") for n, t in files.current().teams.items()} if files else {}
    try:
        stored = await d.store.list(Team, d.settings.namespace)
    except (StoreError, TypeError, KeyError) as err:  # a store that does not keep Teams
        log.debug("teams from the store unavailable: %s", err)
        stored = []
    for team in stored:
        out[team.name] = (team, "store")
    return out


async def find_team(conn: HTTPConnection, name: str) -> tuple[Team, str]:
    if DNS1123_LABEL.match(name):
        found = (await all_teams(conn)).get(name)
        if found is not None:
            return found
    raise ApiError(404, f"team {name!r} not found")


def _lookup_key(conn: HTTPConnection) -> Callable[[str], str | None]:
    """API keys for the router's model: the secret store (global scope) first, then the environment."""

    def lookup(name: str) -> str | None:
        try:
            return secret_store(conn).get(name).decode()  # type: ignore[arg-type]
        except (SecretError, UnicodeDecodeError, OSError):
            return os.environ.get(name) or None

    return lookup


def completer_for(conn: HTTPConnection, team: Team) -> Complete | None:
    """The team router's model as `messages -> text`, or None (then LLM and hybrid stop at semantic)."""
    if team.spec.router.mode in ("keyword", "semantic"):
        return None
    d = deps(conn)
    resolved = resolve_router_model(team, d.catalog.providers, os.environ, _lookup_key(conn))
    if not isinstance(resolved, RouterModel):
        log.info("team %s routes by keywords: %s", team.name, resolved)
        return None
    from agent.providers import ProviderConfig, completer

    config = ProviderConfig(
        name=resolved.provider,
        api_style=resolved.api_style,
        base_url=resolved.base_url,
        model=resolved.model,
        api_key=resolved.api_key,
        timeout=30.0,
        max_retries=1,
    )
    return completer(config, client=d.http)


def learned_examples(conn: HTTPConnection) -> LearnedExamples:
    """The app's store of examples learned from clarification answers (teams with router.learn)."""
    state = conn.app.state
    if getattr(state, "team_learned", None) is None:
        state.team_learned = LearnedExamples(learned_dir(deps(conn).settings))
    return state.team_learned  # type: ignore[no-any-return]


def semantic_router(conn: HTTPConnection) -> SemanticRouter:
    """One per app over the process's shared model and anchor cache, with the app's learned examples."""
    state = conn.app.state
    if getattr(state, "semantic_router", None) is None:
        state.semantic_router = SemanticRouter(learned=learned_examples(conn).get,
                                               vectors_dir=anchor_vectors_dir(deps(conn).settings))
    return state.semantic_router  # type: ignore[no-any-return]


async def classify_with(conn: HTTPConnection, team: Team, message: str) -> Classification:
    files = registry(conn)
    cached = files.current().routers.get(team.name) if files else None  # compiled when the file was read
    router = cached if cached is not None and cached.team is team else KeywordRouter(team)
    return await classify(team, message, completer_for(conn, team), router,
                          semantic=semantic_router(conn).aclassify)


def _status(team: Team, agents: list[Agent]) -> TeamStatusOut:
    status = derive_team_status(team, agents)
    ready = status.conditions[0] if status.conditions else None
    return TeamStatusOut(
        phase=status.phase,
        message=ready.message if ready else "",
        missing_agents=status.missing_agents,
        not_running_agents=status.not_running_agents,
    )


def team_out(team: Team, source: str, agents: list[Agent]) -> TeamOut:
    spec = team.spec
    intents = [
        TeamIntentOut(
            intent=intent,
            agent=entry.agent,
            description=entry.description,
            keywords=list(spec.routing[intent].keywords) if intent in spec.routing else [],
            examples=list(spec.routing[intent].examples) if intent in spec.routing else [],
        )
        for intent, entry in spec.agents.items()
    ]
    return TeamOut(
        id=team.name,
        name=spec.display_name or team.name,
        description=spec.description,
        version=spec.version,
        source=source,
        mode=spec.router.mode,
        confidence_threshold=spec.router.confidence_threshold,
        clarify_on_low_confidence=spec.router.clarify_on_low_confidence,
        provider=spec.router.provider,
        model=spec.router.model,
        fallback_intent=spec.fallback_intent,
        intents=intents,
        status=_status(team, agents),
    )


def classification_out(c: Classification) -> dict[str, Any]:
    return ClassificationOut.model_validate(c.to_json()).model_dump(mode="json")


# ---- HTTP -----------------------------------------------------------------------------------------


@operation(
    Operation("List teams, with each team's status", response=list[TeamOut], query=PAGE_QUERY, errors=(422,), tags=TAGS)
)
async def list_teams(request: Request) -> JSONResponse:
    d = deps(request)
    agents = await d.store.list(Agent, d.settings.namespace)
    teams = await all_teams(request)
    visible = [item for item in sorted(teams.items()) if team_visible(request, item[1][0], agents)]
    page, headers = paginate(request, visible, lambda item: item[0])
    return JSONResponse([team_out(t, s, agents).model_dump(mode="json") for _, (t, s) in page], headers=headers)


def team_visible(conn: HTTPConnection, team: Team, agents: list[Agent]) -> bool:
    """A team is visible to whoever may read every one of its member agents (the same rule the guard
    applies to /api/teams/{id})."""
    projects = {a.name: a.spec.project for a in agents}
    who = principal(conn)
    return all(who.in_project(projects.get(entry.agent)) for entry in team.spec.agents.values())


@operation(Operation("Get one team's configuration and status", response=TeamOut, errors=(404,), tags=TAGS))
async def get_team(request: Request) -> JSONResponse:
    d = deps(request)
    team, source = await find_team(request, request.path_params["id"])
    agents = await d.store.list(Agent, d.settings.namespace)
    return JSONResponse(team_out(team, source, agents).model_dump(mode="json"))


@operation(
    Operation(
        "Classify a message: which intent and agent would answer it",
        body=ClassifyIn,
        response=ClassificationOut,
        errors=(400, 404, 422),
        tags=TAGS,
    )
)
async def classify_message(request: Request) -> JSONResponse:
    team, _ = await find_team(request, request.path_params["id"])
    body = await parse_body(request, ClassifyIn)
    return JSONResponse(classification_out(await classify_with(request, team, body.message)))


@operation(Operation("Re-read the teams now: the store's Teams (and CLAWPEN_TEAMS_DIR)", response=ReloadOut, tags=TAGS))
async def reload_teams(request: Request) -> JSONResponse:
    require(request, TEAMS_WRITE, everywhere=True)  # team files span projects
    d = deps(request)
    files = registry(request)
    current = files.reload() if files else None
    errors = dict(current.errors) if current else {}
    try:
        for broken in await d.store.list_broken(Team, d.settings.namespace):
            errors[broken.path or f"teams/{broken.name}"] = broken.error
    except (StoreError, TypeError, KeyError, AttributeError) as err:
        log.debug("broken teams unavailable: %s", err)
    out = ReloadOut(
        teams=sorted(await all_teams(request)),
        errors=[TeamFileError(file=f, message=m) for f, m in sorted(errors.items())],
    )
    return JSONResponse(out.model_dump(mode="json"))


# ---- WebSocket chat -------------------------------------------------------------------------------


class _FromAgent:
    """The agent chat relay writes to this instead of the socket: each frame gets `from_agent`, and the
    team's agent_response_prefix goes in front of the first streamed piece and the full text."""

    def __init__(self, ws: WebSocket, agent: str, prefix: str) -> None:
        self.ws, self.agent, self.prefix, self.started = ws, agent, prefix, False

    async def send_json(self, frame: dict[str, Any]) -> None:
        frame = {**frame, "from_agent": self.agent}
        if self.prefix and frame.get("role") == "assistant" and isinstance(frame.get("content"), str):
            if frame.get("done") or not self.started:
                frame["content"] = self.prefix + frame["content"]
            self.started = True
        await self.ws.send_json(frame)


def _options(team: Team, intents: tuple[str, ...]) -> list[dict[str, str]]:
    return [
        {"intent": i, "agent": team.spec.agents[i].agent, "description": team.spec.agents[i].description}
        for i in intents
    ]


def _welcome(team: Team) -> dict[str, Any]:
    spec = team.spec
    lines = [f"Welcome to {spec.display_name or team.name}."]
    if spec.description:
        lines.append(spec.description)
    lines.append("Ask anything; I will pass it to the right specialist.")
    return {
        "role": "assistant",
        "type": "welcome",
        "team": team.name,
        "content": " ".join(lines),
        "intents": _options(team, tuple(spec.agents)),
        "timestamp": now_iso(),
    }


def _agent_problem(agent: Agent | None, name: str) -> str | None:
    if agent is None:
        return f"agent {name!r} does not exist; create it (see teams/examples/)"
    return not_ready(agent)


async def _answer(
    ws: WebSocket, d: Deps, team: Team, decision: RouteTo, session: str, approvals: ApprovalRouter
) -> None:
    await ws.send_json(
        {
            "role": "assistant",
            "type": "routing",
            "content": decision.ack,
            "routing_to": decision.agent,
            "classification": classification_out(decision.classification),
            "timestamp": now_iso(),
        }
    )
    try:
        agent: Agent | None = await d.agent(decision.agent)
    except NotFound:
        agent = None
    problem = _agent_problem(agent, decision.agent)
    if agent is not None and not problem:
        problem = await wake_for_chat(d, agent)
    if problem or agent is None:
        await ws.send_json(
            {**error_frame("agent unavailable", problem or ""), "from_agent": decision.agent, "done": True}
        )
        return
    # The agent keeps history per session: one agent session per team session.
    frame = ChatIn(content=decision.message, session=f"team.{team.name}.{session}"[:128])
    sink = _FromAgent(ws, agent.name, agent_prefix(team, decision.intent))
    await relay(sink, d, agent, frame, approvals)  # type: ignore[arg-type]


async def team_chat(ws: WebSocket) -> None:
    d = deps(ws)
    name = ws.path_params["id"]
    await ws.accept()
    try:
        team, _ = await find_team(ws, name)
    except ApiError as err:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.send_json(error_frame("unknown team", err.message))
            await ws.close(code=WS_UNKNOWN_TEAM, reason="unknown team")
        return
    await ws.send_json(_welcome(team))
    sessions: dict[str, Conversation] = {}
    inbox = new_inbox()
    gone = asyncio.Event()
    approvals = ApprovalRouter(ws, d.http, error_frame)  # the routed agent's tool approvals
    reader = asyncio.create_task(read_client(ws, inbox, gone, approvals))

    async def classify_fn(t: Team, message: str) -> Classification:
        return await classify_with(ws, t, message)

    try:
        while True:
            raw = await inbox.get()
            if raw is None:
                return
            frame = await parse_chat_frame(ws, raw)
            if frame is None:
                continue
            with contextlib.suppress(ApiError):  # pick up edits to the team file between messages
                team, _ = await find_team(ws, name)
            conversation = sessions.setdefault(frame.session, Conversation(team, learn=learned_examples(ws).add))
            conversation.team = team
            decision = await conversation.decide(frame.content, classify_fn)
            if isinstance(decision, Clarify):
                await ws.send_json(
                    {
                        "role": "assistant",
                        "type": "clarification",
                        "done": True,  # the turn ends here: the next message answers the question
                        "content": decision.text,
                        "options": _options(team, decision.options),
                        "classification": classification_out(decision.classification),
                        "timestamp": now_iso(),
                    }
                )
                continue
            task = asyncio.create_task(_answer(ws, d, team, decision, frame.session, approvals))
            waiter = asyncio.create_task(gone.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not task.done():  # the client left: dropping the stream stops the agent generating
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return
            if task.exception() is not None:
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


ROUTES = [
    Route("/api/teams", list_teams, methods=["GET"], permission=need(TEAMS_READ)),
    Route("/api/teams/reload", reload_teams, methods=["POST"], permission=need(TEAMS_WRITE, "global")),
    Route("/api/teams/{id}", get_team, methods=["GET"], permission=need(TEAMS_READ, "team")),
    Route("/api/teams/{id}/classify", classify_message, methods=["POST"], permission=need(TEAMS_CHAT, "team")),
    WebSocketRoute("/api/teams/{id}/chat", team_chat, permission=need(TEAMS_CHAT, "team")),
]
