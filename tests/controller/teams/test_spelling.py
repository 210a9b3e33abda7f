"""Typo repair before embedding (controller/teams/spelling.py): slips are read as the words meant,
real words and names are left alone, and a misspelt message routes like the spelt one, with the real
model and the shipped teams."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.resources import Team
from controller.teams import minilm
from controller.teams.semantic import AnchorCache, SemanticRouter, intent_anchors
from controller.teams.spelling import General, Speller, english_counts
from controller.teams.toml_format import load_team_file

ROOT = Path(__file__).resolve().parents[3]


def _semantic(name: str) -> Team:
    team = load_team_file(ROOT / "teams" / f"{name}.toml")
    router = team.spec.router.model_copy(update={"mode": "semantic"})
    return team.model_copy(update={"spec": team.spec.model_copy(update={"router": router})})


@pytest.fixture(scope="module")
def general() -> General:
    return General.from_vocab(minilm.shared_encoder().tokenizer.vocab, english_counts())


def _speller(general: General, team: str) -> Speller:
    return Speller.for_team(general, [t for texts in intent_anchors(_semantic(team)).values() for t in texts])


@pytest.mark.parametrize(("team", "typed", "meant"), [
    ("platform-support", "i forgot my pasword for jira", "i forgot my password for jira"),
    ("platform-support", "need a new kafak topic", "need a new kafka topic"),
    ("platform-support", "add a read replcia to the reporting db", "add a read replica to the reporting db"),
    ("finance-team", "the hotel reciept from Munich", "the hotel receipt from Munich"),
    ("finance-team", "cusotmer wants a payment link", "customer wants a payment link"),
    ("finance-team", "invocie for the march retainer", "invoice for the march retainer"),
])
def test_slips_are_read_as_the_word_meant(general: General, team: str, typed: str, meant: str) -> None:
    repaired, changed = _speller(general, team).repair(typed)
    assert repaired == meant
    assert changed


@pytest.mark.parametrize("text", [
    "sentry is ingesting errors from the payback service",  # real words the encoder's vocabulary lacks
    "Initech and Hooli still owe us",  # names inside a sentence
    "vpn via sso, k8s, gRPC",  # short words, jargon, odd casing
    "attaching the adapter receipts",  # inflections of known words
])
def test_real_words_and_names_are_left_alone(general: General, text: str) -> None:
    for team in ("finance-team", "platform-support"):
        assert _speller(general, team).repair(text) == (text, [])


def test_a_capitalised_first_word_is_only_repaired_towards_the_teams_words(general: General) -> None:
    speller = _speller(general, "finance-team")
    assert speller.repair("Globex paid the deposit")[1] == []  # a name, not "globe"
    assert speller.repair("Reciept attached")[0] == "receipt attached"


@pytest.mark.parametrize(("team", "typed", "intent"), [
    ("platform-support", "i forgot my pasword for the staging console", "access"),
    ("platform-support", "please provison a new postgress databse for billing", "infrastructure"),
    ("finance-team", "our cleint hasnt setled the ballance", "receivables"),
    ("finance-team", "the suplier wants there mony", "payables"),
])
def test_a_misspelt_message_routes_like_the_spelt_one(typed: str, team: str, intent: str) -> None:
    router = SemanticRouter(cache=AnchorCache())
    result = router.classify(_semantic(team), typed)
    assert (result.intent, result.needs_clarification) == (intent, False)
    assert " as '" in result.reasoning  # the explanation says how the message was read
