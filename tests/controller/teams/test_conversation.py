"""A team chat session's routing decisions: route, stick, ask, understand the answer, re-ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.resources import Team
from controller.teams.conversation import Clarify, Conversation, Route
from controller.teams.llm_router import classify
from controller.teams.toml_format import load_team_file

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def finance() -> Team:
    team = load_team_file(ROOT / "teams" / "finance-team.toml")
    team.spec.router.mode = "keyword"
    return team


async def keywords(team: Team, message: str):  # type: ignore[no-untyped-def]
    return await classify(team, message)


async def test_clear_message_routes_with_ack(finance: Team) -> None:
    decision = await Conversation(finance).decide("Here's the receipt for lunch", keywords)
    assert isinstance(decision, Route)
    assert (decision.intent, decision.agent) == ("receipts", "remy")
    assert decision.ack == "Let me pass this to remy..."
    assert decision.message == "Here's the receipt for lunch"


async def test_follow_up_sticks_then_moves_when_clearly_elsewhere(finance: Team) -> None:
    conv = Conversation(finance)
    await conv.decide("Here's the receipt for lunch", keywords)
    follow = await conv.decide("and the one from Tuesday too", keywords)
    assert isinstance(follow, Route) and follow.agent == "remy" and follow.classification.method == "sticky"
    moved = await conv.decide("Create an invoice for the Johnson project", keywords)
    assert isinstance(moved, Route) and moved.agent == "rae"


async def test_unclear_message_asks_then_forwards_the_original_after_a_pick(finance: Team) -> None:
    conv = Conversation(finance)
    ask = await conv.decide("Mark the invoice as paid", keywords)  # payables vs receivables: a tie
    assert isinstance(ask, Clarify)
    assert ask.options == ("payables", "receivables")
    assert ask.text.splitlines()[0] == "I'm not sure what you need. Are you asking about:"
    assert "• receivables: Money owed to us" in ask.text
    picked = await conv.decide("receivables", keywords)
    assert isinstance(picked, Route) and picked.agent == "rae"
    assert picked.message == "Mark the invoice as paid" and picked.classification.method == "user"
    assert conv.pending_message is None and conv.previous_intent == "receivables"


async def test_pick_by_number(finance: Team) -> None:
    conv = Conversation(finance)
    await conv.decide("hello there", keywords)  # nothing matches, no fallback: all four options
    picked = await conv.decide("4", keywords)
    assert isinstance(picked, Route) and picked.agent == "rex" and picked.message == "hello there"


async def test_rephrasing_instead_of_picking(finance: Team) -> None:
    conv = Conversation(finance)
    await conv.decide("hello there", keywords)
    again = await conv.decide("I need a profit and loss report", keywords)
    assert isinstance(again, Route) and again.agent == "rex"
    assert again.message == "I need a profit and loss report"


async def test_still_unclear_asks_again_with_the_next_prompt(finance: Team) -> None:
    conv = Conversation(finance)
    first = await conv.decide("hello there", keywords)
    second = await conv.decide("umm, not sure", keywords)
    assert isinstance(first, Clarify) and isinstance(second, Clarify)
    assert second.text.startswith("Could you clarify?")
    assert conv.pending_message == "hello there"  # the original question is still what gets forwarded
