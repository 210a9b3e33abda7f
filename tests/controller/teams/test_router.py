"""Keyword routing: word boundaries, stems, phrases, scores, ties, fallback, clarification, stickiness."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.routing import load_routing_set
from controller.resources import ObjectMeta, Team, TeamSpec
from controller.teams.router import (
    UNKNOWN,
    KeywordRouter,
    agent_prefix,
    apply_stickiness,
    clarification_message,
    clarification_options,
    classify_keywords,
    resolve_clarification_reply,
    routing_ack,
)
from controller.teams.text import stem
from controller.teams.toml_format import load_team_file

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def finance() -> Team:
    return load_team_file(ROOT / "teams" / "finance-team.toml")


@pytest.fixture(scope="module")
def platform() -> Team:
    return load_team_file(ROOT / "teams" / "platform-support.toml")


def make_team(routing: dict[str, list[str]], **router: object) -> Team:
    spec = {
        "agents": {intent: {"agent": f"agent-{i}", "description": f"{intent} things"}
                   for i, intent in enumerate(routing)},
        "routing": {intent: {"keywords": kws} for intent, kws in routing.items()},
        "router": router,
    }
    return Team(metadata=ObjectMeta(name="t"), spec=TeamSpec.model_validate(spec))


def test_pay_does_not_match_inside_other_words() -> None:
    team = make_team({"payables": ["pay", "rent", "due"], "other": ["zzz"]})
    for message in ["Please repay me", "payroll is done", "the current procedure", "the display broke"]:
        result = classify_keywords(team, message)
        assert result.intent == UNKNOWN and result.matched_keywords == (), message
        assert result.needs_clarification and result.agent is None


@pytest.mark.parametrize(("message", "keyword"), [
    ("two receipts attached", "receipt"),
    ("I am paying it today", "pay"),
    ("we paid yesterday", "pay"),
    ("invoiced last week", "invoice"),
    ("invoicing runs on Monday", "invoice"),
    ("shipping is late", "ship"),
    ("companies we work with", "company"),
])
def test_stems_fold_plurals_and_verb_forms(message: str, keyword: str) -> None:
    team = make_team({"x": [keyword], "y": ["zzz"]})
    result = classify_keywords(team, message)
    assert result.intent == "x" and result.matched_keywords == (keyword,), result


def test_stemmer_keeps_short_and_unrelated_words_apart() -> None:
    assert stem("thing") == "thing" and stem("string") == "string"  # no vowel left before -ing
    assert stem("status") == "status" and stem("this") == "this"
    assert stem("display") != stem("pay")


def test_multi_word_keyword_beats_the_single_word_inside_it(finance: Team) -> None:
    result = classify_keywords(finance, "Please bill the client for the design work")
    assert result.intent == "receivables"
    assert result.matched_keywords == ("bill client",)  # "bill" (payables) is inside the phrase: dropped
    assert not result.needs_clarification and result.agent == "rae"


def test_phrase_does_not_match_out_of_order() -> None:
    team = make_team({"x": ["cash flow"], "y": ["zzz"]})
    assert classify_keywords(team, "flow of cash").intent == UNKNOWN
    assert classify_keywords(team, "our cash flow").intent == "x"


def test_more_matches_mean_more_confidence() -> None:
    team = make_team({"receipts": ["receipt", "expense", "bought"], "payables": ["bill"]})
    one = classify_keywords(team, "a receipt")
    three = classify_keywords(team, "I bought lunch, receipt attached, it's an expense")
    assert one.intent == three.intent == "receipts"
    assert 0 < one.confidence < three.confidence <= 1
    assert set(three.matched_keywords) == {"receipt", "expense", "bought"}


def test_longer_keywords_weigh_more() -> None:
    team = make_team({"a": ["card"], "b": ["corporate card statement"]})
    # both phrases occur separately: three words of evidence beat one
    result = classify_keywords(team, "my card and the corporate card statement")
    assert result.intent == "b" and result.scores[0] == ("b", 3.0)


def test_competing_evidence_lowers_confidence() -> None:
    team = make_team({"a": ["alpha"], "b": ["beta"]})
    alone = classify_keywords(team, "alpha")
    contested = classify_keywords(team, "alpha alpha beta")
    assert alone.confidence > contested.confidence


def test_repeated_keyword_counts_once() -> None:
    team = make_team({"a": ["alpha"], "b": ["beta", "gamma"]})
    result = classify_keywords(team, "alpha alpha alpha beta gamma")
    assert result.intent == "b"


def test_ties_break_by_declared_order_and_ask() -> None:
    first = make_team({"a": ["shared"], "b": ["shared"]})
    second = make_team({"b": ["shared"], "a": ["shared"]})
    results = {classify_keywords(first, "a shared thing") for _ in range(20)}
    assert len(results) == 1
    [result] = results
    assert result.intent == "a" and result.confidence == 0.5 and result.needs_clarification
    assert classify_keywords(second, "a shared thing").intent == "b"


def test_tie_routes_when_clarification_is_off() -> None:
    team = make_team({"a": ["shared"], "b": ["shared"]}, clarify_on_low_confidence=False)
    result = classify_keywords(team, "shared")
    assert result.intent == "a" and not result.needs_clarification and result.agent == "agent-0"


def test_no_match_without_fallback_asks(finance: Team) -> None:
    result = classify_keywords(finance, "What's the weather in Paris?")
    assert result.intent == UNKNOWN and result.needs_clarification and result.agent is None
    assert result.confidence == 0.0 and result.method == "clarify"


def test_no_match_with_fallback_routes_to_it(platform: Team) -> None:
    result = classify_keywords(platform, "Tell me a joke")
    assert (result.intent, result.agent, result.method) == ("helpdesk", "hal", "fallback")
    assert not result.needs_clarification


def test_confidence_is_always_in_range(finance: Team, platform: Team) -> None:
    routers = {"finance-team": KeywordRouter(finance), "platform-support": KeywordRouter(platform)}
    for case in load_routing_set():
        result = routers[case.team].classify(case.message)
        assert 0.0 <= result.confidence <= 1.0
        assert (result.agent is None) == (result.intent == UNKNOWN)


def test_empty_and_odd_messages_do_not_crash(finance: Team) -> None:
    for message in ["", "   ", "!!!", "💸💸", "x" * 10000, "\x00\n\t"]:
        result = classify_keywords(finance, message)
        assert result.needs_clarification


# ---- responses and clarification --------------------------------------------------------------


def test_agent_name_in_responses_is_the_agents_name(finance: Team) -> None:
    assert routing_ack(finance, "receipts") == "Let me pass this to remy..."
    assert agent_prefix(finance, "payables") == "[pax] "


def test_stray_braces_in_templates_are_harmless() -> None:
    team = make_team({"a": ["x"]})
    team.spec.responses.routing_ack = "{oops} {agent_name} {0} {"
    assert routing_ack(team, "a") == "{oops} agent-0 {0} {"


def test_clarification_lists_options_with_descriptions(finance: Team) -> None:
    text = clarification_message(finance, clarification_options(finance, ["payables", "receivables"]))
    lines = text.splitlines()
    assert lines[0] == "I'm not sure what you need. Are you asking about:"
    assert lines[1:] == [
        f"• payables: {finance.spec.agents['payables'].description}",
        f"• receivables: {finance.spec.agents['receivables'].description}",
    ]
    assert clarification_message(finance, ["payables"], attempt=1).startswith("Could you clarify?")
    assert clarification_options(finance) == ["receipts", "payables", "receivables", "reporter"]


def test_clarification_without_prompts_uses_clarification_needed() -> None:
    team = make_team({"a": ["x"]})
    team.spec.responses.clarification_needed = "Say more?"
    assert clarification_message(team, ["a"]).splitlines()[0] == "Say more?"


@pytest.mark.parametrize(("reply", "intent"), [
    ("2", "payables"), ("payables", "payables"), ("  Payables! ", "payables"), ("pax", "payables"),
    ("4", "reporter"), ("5", None), ("0", None), ("banana", None), ("", None),
])
def test_answers_to_a_clarification(finance: Team, reply: str, intent: str | None) -> None:
    assert resolve_clarification_reply(finance, reply) == intent


# ---- session stickiness -------------------------------------------------------------------------


def test_follow_up_without_signal_stays_with_previous_agent(finance: Team) -> None:
    new = classify_keywords(finance, "and what about the one from last week?")
    assert new.needs_clarification
    sticky = apply_stickiness(finance, "receipts", new)
    assert (sticky.intent, sticky.agent, sticky.method) == ("receipts", "remy", "sticky")
    assert not sticky.needs_clarification


def test_follow_up_that_clearly_belongs_elsewhere_moves(finance: Team) -> None:
    new = classify_keywords(finance, "Now create an invoice for the Johnson project")
    moved = apply_stickiness(finance, "receipts", new)
    assert moved == new and moved.intent == "receivables"


def test_ambiguous_follow_up_stays(finance: Team) -> None:
    new = classify_keywords(finance, "a receipt for that bill")  # receipts vs payables: a tie
    assert new.needs_clarification
    assert apply_stickiness(finance, "payables", new).intent == "payables"


def test_fallback_follow_up_stays(platform: Team) -> None:
    new = classify_keywords(platform, "thanks, that worked")
    assert new.method == "fallback"
    assert apply_stickiness(platform, "deployments", new).intent == "deployments"


def test_no_previous_or_unknown_previous_is_unchanged(finance: Team) -> None:
    new = classify_keywords(finance, "hello")
    assert apply_stickiness(finance, None, new) == new
    assert apply_stickiness(finance, "removed-intent", new) == new
