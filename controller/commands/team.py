"""`clawpen team classify NAME "message"`: which agent of a team would answer, and why.

It classifies on this machine, the way the gateway does, with the team from the store (an applied
Team) or the teams directory (teams/*.toml): keywords, then the semantic router, with the team's
learned examples. It never calls the team's router model (a terminal check should not spend a model
call or send the message anywhere); when the gateway would ask the model, the output says so.
"""

from __future__ import annotations

import argparse
import json

from controller.cli import CommandError
from controller.commands._common import settings
from controller.resources import Team
from controller.store.base import NotFound, StoreError
from controller.teams.llm_router import classify
from controller.teams.registry import read_team_dir


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("team", help="team tools: classify a message")
    team_sub = p.add_subparsers(dest="team_command", required=True, metavar="COMMAND")
    c = team_sub.add_parser("classify", help="show which intent and agent a message routes to, and why")
    c.add_argument("name", help="the team's name")
    c.add_argument("message", help="the message to classify")
    c.add_argument("-o", "--output", choices=["text", "json"], default="text")
    c.set_defaults(handler=classify_command)


async def _find(name: str) -> Team:
    s = settings()
    try:
        from controller.wiring import open_store

        return await open_store(s).get(Team, name, s.namespace)
    except (NotFound, StoreError, TypeError, KeyError, OSError):
        pass
    team = read_team_dir(s.teams_dir).teams.get(name) if s.teams_dir is not None else None
    if team is None:
        where = f"the store or {s.teams_dir}" if s.teams_dir is not None else "the store (`clawpen apply -f teams/`)"
        raise CommandError(f"team {name!r} not found (in {where})")
    return team


def render_classification(result: dict[str, object]) -> str:
    lines = [
        f"intent:     {result['intent']}" + ("  (asks the user to clarify)" if result["needs_clarification"] else ""),
        f"agent:      {result['agent'] or '-'}",
        f"confidence: {result['confidence']}",
        f"decided by: {result['method']} (team mode {result['mode']})",
        f"why:        {result['reasoning']}",
    ]
    tops = result.get("top_intents") or []
    if isinstance(tops, list) and tops:
        lines.append("top:        " + ", ".join(f"{t['intent']} {t['score']}" for t in tops))
    return "\n".join(lines)


async def classify_command(args: argparse.Namespace) -> int:
    from controller.teams.anchor_vectors import anchor_vectors_dir
    from controller.teams.learned import LearnedExamples, learned_dir
    from controller.teams.semantic import SemanticRouter

    team = await _find(args.name)
    learned = LearnedExamples(learned_dir(settings()))
    router = SemanticRouter(learned=learned.get, vectors_dir=anchor_vectors_dir(settings()))
    result = await classify(team, args.message, None, semantic=router.aclassify)
    out = result.to_json()
    print(json.dumps(out, indent=2) if args.output == "json" else render_classification(out))
    return 0
