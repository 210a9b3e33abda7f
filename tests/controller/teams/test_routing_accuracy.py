"""Routing accuracy over the labelled set (routing_set.yaml), keyword and hybrid, printed and floored.

Run with -s to see the figures. A case is right when the outcome ("clarify" or the routed intent) is
one of its accepted labels.
"""

from __future__ import annotations

import pytest

from bench.routing import (
    Case,
    accuracy,
    load_routing_set,
    load_teams,
    naive_substring_outcome,
    outcome_of,
)
from controller.resources import Team
from controller.teams.llm_router import classify
from controller.teams.router import KeywordRouter
from tests.controller.teams.scripted_model import ScriptedModel

# Floors, and why these numbers:
# - keyword 0.80: measured 0.865 when the set was written. Keyword routing cannot know words its lists
#   lack ("Are we profitable yet?") and must ask on ties, so the clear-case misses are real; 0.80 leaves
#   room for a keyword list edit or two without flapping, while a regression in matching (substrings,
#   broken stemming, unstable ties) costs far more than that. It must also beat the seed's substring
#   router on the same set, which is the point of word-boundary matching.
# - hybrid 0.88: measured 0.929 with the scripted model (a bag-of-words reader of the prompt). Hybrid
#   must beat keyword-only: if the prompt lost its descriptions/examples or the parser broke, it would not.
KEYWORD_FLOOR = 0.80
HYBRID_FLOOR = 0.88


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_routing_set()


@pytest.fixture(scope="module")
def teams(cases: list[Case]) -> dict[str, Team]:
    return load_teams({c.team for c in cases})


def test_routing_set_is_big_and_varied(cases: list[Case], teams: dict[str, Team]) -> None:
    assert len(cases) >= 100
    assert {c.kind for c in cases} == {"clear", "ambiguous", "off-topic"}
    assert set(teams) == {"finance-team", "platform-support"}
    for case in cases:
        team = teams[case.team]
        for label in case.accept:
            assert label == "clarify" or label in team.spec.agents, f"{case.message!r}: unknown label {label}"
    for name, team in teams.items():  # every intent of every shipped team is exercised
        assert {i for c in cases if c.team == name for i in c.accept} >= set(team.spec.agents)
    examples = {e for t in teams.values() for r in t.spec.routing.values() for e in r.examples}
    copied = [c.message for c in cases if c.message in examples]
    assert len(copied) <= 3, f"the set should not just repeat the teams' own examples: {copied}"


def test_keyword_accuracy(cases: list[Case], teams: dict[str, Team]) -> None:
    routers = {name: KeywordRouter(team) for name, team in teams.items()}
    ours = accuracy(cases, lambda c: outcome_of(routers[c.team].classify(c.message)))
    naive = accuracy(cases, lambda c: naive_substring_outcome(teams[c.team], c.message))
    print()
    print(ours.line("keyword accuracy"))
    print(naive.line("naive substring baseline"))
    for case, got in ours.misses:
        print(f"  miss [{case.team}] {case.message!r}: got {got}, want {'/'.join(case.accept)}")
    assert ours.ratio >= KEYWORD_FLOOR, ours.line("keyword accuracy")
    assert ours.right > naive.right, "word/stem matching must beat raw substrings"


async def test_hybrid_accuracy_with_scripted_model(cases: list[Case], teams: dict[str, Team]) -> None:
    routers = {name: KeywordRouter(team) for name, team in teams.items()}
    model = ScriptedModel()
    outcomes = {}
    for case in cases:
        assert teams[case.team].spec.router.mode == "hybrid"
        result = await classify(teams[case.team], case.message, model, routers[case.team])
        outcomes[(case.team, case.message)] = outcome_of(result)
    hybrid = accuracy(cases, lambda c: outcomes[(c.team, c.message)])
    keyword = accuracy(cases, lambda c: outcome_of(routers[c.team].classify(c.message)))
    print()
    print(hybrid.line("hybrid accuracy (scripted model)") + f", model asked {model.calls} times")
    assert 0 < model.calls < len(cases), "hybrid asks the model only when keywords are unsure"
    assert hybrid.ratio >= HYBRID_FLOOR, hybrid.line("hybrid accuracy")
    assert hybrid.right > keyword.right


# Semantic floors. First run of bench/routing.py (session 2): held-out keyword 18.8 %, semantic 49.5 %.
# Session 3 (richer anchors, centred kNN, int8 encoder): held-out semantic 79.7 %, +60.9 points over
# keyword; development hybrid without a model 97.2 %, traps 15/16. Session 4 (typo repair, word overlap,
# small talk, ~95 examples per intent): held-out semantic 93.1 %, +74.3 points over keyword. The held-out
# set was written before tuning and is never tuned on; these floors only catch regressions (a broken
# tokenizer, forward pass or anchor set falls far below), with room for a few messages of noise.
HELDOUT_SEMANTIC_FLOOR = 0.88
HELDOUT_GAIN_OVER_KEYWORD = 0.65
DEV_HYBRID_NO_MODEL_FLOOR = 0.92


async def test_semantic_accuracy_on_the_held_out_set(teams: dict[str, Team]) -> None:
    from bench.routing import HELDOUT_SET
    from controller.teams.semantic import AnchorCache, SemanticRouter

    held = load_routing_set(HELDOUT_SET)
    assert len(held) >= 200
    semantic = SemanticRouter(cache=AnchorCache())
    keyword = accuracy(held, lambda c: outcome_of(KeywordRouter(teams[c.team]).classify(c.message)))
    outcomes = {}
    for case in held:
        outcomes[case.message] = outcome_of(semantic.classify(teams[case.team], case.message))
    sem = accuracy(held, lambda c: outcomes[c.message])
    print()
    print(keyword.line("held-out keyword"))
    print(sem.line("held-out semantic"))
    assert sem.ratio >= HELDOUT_SEMANTIC_FLOOR
    assert sem.ratio - keyword.ratio >= HELDOUT_GAIN_OVER_KEYWORD


async def test_hybrid_without_a_model_on_the_development_set(cases: list[Case], teams: dict[str, Team]) -> None:
    from controller.teams.semantic import AnchorCache, SemanticRouter

    semantic = SemanticRouter(cache=AnchorCache())
    outcomes = {}
    for case in cases:
        result = await classify(teams[case.team], case.message, None, semantic=semantic.aclassify)
        outcomes[(case.team, case.message)] = outcome_of(result)
    hybrid = accuracy(cases, lambda c: outcomes[(c.team, c.message)])
    traps = accuracy([c for c in cases if c.trap], lambda c: outcomes[(c.team, c.message)])
    keyword = accuracy(cases, lambda c: outcome_of(KeywordRouter(teams[c.team]).classify(c.message)))
    print()
    print(hybrid.line("development hybrid, no model"))
    assert hybrid.ratio >= DEV_HYBRID_NO_MODEL_FLOOR and hybrid.right > keyword.right
    assert traps.right >= 15


# The later development sets (routing_dev2/3/4.yaml: written from the intents' purposes, with typos, short
# and long messages, words no keyword list has). Tuned on, so these are regression floors, not claims;
# measured when the floors were set (session 4): semantic 97.1 / 94.1 / 94.9 %, keyword 43 / 57 / 45 %.
DEV_SETS_SEMANTIC_FLOOR = 0.88
DEV_SETS_GAIN_OVER_KEYWORD = 0.30


@pytest.mark.parametrize("name", ["routing_dev2.yaml", "routing_dev3.yaml", "routing_dev4.yaml"])
async def test_semantic_and_hybrid_on_the_later_development_sets(teams: dict[str, Team], name: str) -> None:
    from bench.routing import DEV2_SET
    from controller.teams.semantic import AnchorCache, SemanticRouter

    cases = load_routing_set(DEV2_SET.parent / name)
    assert len(cases) >= 130 and {c.kind for c in cases} == {"clear", "ambiguous", "off-topic"}
    examples = {e for t in teams.values() for r in t.spec.routing.values() for e in r.examples}
    assert not [c.message for c in cases if c.message in examples], f"{name} must not repeat the anchors"
    semantic = SemanticRouter(cache=AnchorCache())
    sem: dict[str, str] = {}
    hyb: dict[str, str] = {}
    for case in cases:
        team = teams[case.team]
        router = team.spec.router.model_copy(update={"mode": "semantic"})
        sem_team = team.model_copy(update={"spec": team.spec.model_copy(update={"router": router})})
        sem[case.message] = outcome_of(semantic.classify(sem_team, case.message))
        hyb[case.message] = outcome_of(await classify(team, case.message, None, semantic=semantic.aclassify))
    s = accuracy(cases, lambda c: sem[c.message])
    h = accuracy(cases, lambda c: hyb[c.message])
    k = accuracy(cases, lambda c: outcome_of(KeywordRouter(teams[c.team]).classify(c.message)))
    print()
    print(s.line(f"{name} semantic"))
    print(h.line(f"{name} hybrid, no model"))
    print(k.line(f"{name} keyword"))
    assert s.ratio >= DEV_SETS_SEMANTIC_FLOOR and h.ratio >= DEV_SETS_SEMANTIC_FLOOR
    assert s.ratio - k.ratio >= DEV_SETS_GAIN_OVER_KEYWORD
