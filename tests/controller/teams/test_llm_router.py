"""LLM and hybrid routing: the prompt, the reply parser's robustness, and how failures fall back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.resources import Team
from controller.teams.llm_router import PROMPT_EXAMPLES, build_messages, classify, parse_reply
from controller.teams.toml_format import load_team_file
from tests.controller.teams.scripted_model import ScriptedModel

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def finance() -> Team:
    return load_team_file(ROOT / "teams" / "finance-team.toml")


@pytest.fixture
def platform() -> Team:
    return load_team_file(ROOT / "teams" / "platform-support.toml")


def with_mode(team: Team, mode: str) -> Team:
    team = team.model_copy(deep=True)
    team.spec.router.mode = mode  # type: ignore[assignment]
    return team


class Replies:
    """A scripted provider that answers each call with the next canned text (or raises it)."""

    def __init__(self, *replies: object) -> None:
        self.replies, self.calls = list(replies), []

    async def __call__(self, messages: list[dict[str, str]]) -> str:
        self.calls.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply  # type: ignore[return-value]


def test_prompt_has_team_descriptions_examples_and_message(finance: Team) -> None:
    system, user = build_messages(finance, "I paid for a taxi")
    assert system["role"] == "system" and user == {"role": "user", "content": "I paid for a taxi"}
    text = system["content"]
    assert "Finance AI Team" in text and "Receipts, invoicing" in text
    for intent, entry in finance.spec.agents.items():
        assert f"- {intent}: {entry.description}" in text
        examples = finance.spec.routing[intent].examples
        shown = [e for e in examples if f"example: {e}" in text]
        assert len(shown) == PROMPT_EXAMPLES < len(examples)  # a few per intent, not ~90 (prompt cost)
        assert shown[0] == examples[0] and examples.index(shown[-1]) > len(examples) // 2  # spread out
    assert '"intent"' in text and '"confidence"' in text and '"none"' in text
    assert len(text) < 8000  # ~2k tokens per model call, whatever the number of semantic anchors


@pytest.mark.parametrize(("reply", "intent", "confidence"), [
    ('{"intent": "payables", "confidence": 0.9, "reasoning": "a bill"}', "payables", 0.9),
    ('```json\n{"intent": "receipts", "confidence": 0.8}\n```', "receipts", 0.8),
    ('Sure! {"intent": "reporter", "confidence": 0.75, "reasoning": "totals"} Hope that helps.', "reporter", 0.75),
    ('{"intent": "PAYABLES", "confidence": "85%"}', "payables", 0.85),
    ('{"intent": "payables", "confidence": 85}', "payables", 0.85),
    ('{"intent": "payables", "confidence": 250}', "payables", 1.0),
    ('{"intent": "payables", "confidence": -3}', "payables", 0.0),
    ('{"intent": "payables", "confidence": "very"}', "payables", 0.5),
    ('{"intent": "payables", "confidence": true}', "payables", 0.5),
    ('{"intent": "payables", "confidence": NaN}', "payables", 0.5),
    ('{"intent": "payables"}', "payables", 0.5),
    ('{"intent": "pax", "confidence": 0.9}', "payables", 0.9),  # the agent's name
    ('{"intent": "none", "confidence": 0.9}', None, 0.9),
    ('{"intent": null, "confidence": 0.2}', None, 0.2),
    ('{"thought": "hmm"} then {"intent": "rae", "confidence": 0.7}', "receivables", 0.7),
    ('{"intent": "marketing", "confidence": 0.9} or {"intent": "receipts", "confidence": 0.6}', "receipts", 0.6),
])
def test_parser_recovers_what_it_can(finance: Team, reply: str, intent: str | None, confidence: float) -> None:
    verdict = parse_reply(finance, reply)
    assert verdict is not None
    assert verdict.intent == intent and verdict.confidence == pytest.approx(confidence)


@pytest.mark.parametrize("reply", [
    "", "payables", "I think it's payables, 90% sure", '{"intent": "marketing", "confidence": 0.9}',
    '{"intent": 42}', '{"intent": ["payables"]}', '["payables", 0.9]', "{not json}", '{"intent": "payab',
    "```json\n```", None, 42, "\x00\xff" * 100,
])
def test_parser_gives_up_on_garbage(finance: Team, reply: object) -> None:
    assert parse_reply(finance, reply) is None


def test_reasoning_is_kept_short(finance: Team) -> None:
    verdict = parse_reply(finance, '{"intent": "receipts", "confidence": 1, "reasoning": "%s"}' % ("x" * 5000))
    assert verdict is not None and len(verdict.reasoning) == 500


async def test_llm_mode_uses_the_models_verdict(finance: Team) -> None:
    model = Replies('{"intent": "receivables", "confidence": 0.92, "reasoning": "client owes us"}')
    result = await classify(with_mode(finance, "llm"), "Our customer paid only half", model)
    assert (result.intent, result.agent, result.method) == ("receivables", "rae", "llm")
    assert result.confidence == 0.92 and not result.needs_clarification
    assert result.reasoning == "model answer: client owes us" and len(model.calls) == 1


async def test_llm_low_confidence_asks(finance: Team) -> None:
    model = Replies('{"intent": "receivables", "confidence": 0.4}')
    result = await classify(with_mode(finance, "llm"), "hmm", model)
    assert result.intent == "receivables" and result.needs_clarification


async def test_llm_none_goes_to_fallback_or_asks(finance: Team, platform: Team) -> None:
    result = await classify(with_mode(platform, "llm"), "lunch?", Replies('{"intent": "none"}'))
    assert (result.intent, result.agent, result.needs_clarification) == ("helpdesk", "hal", False)
    result = await classify(with_mode(finance, "llm"), "lunch?", Replies('{"intent": "none"}'))
    assert result.agent is None and result.needs_clarification


@pytest.mark.parametrize("failure", [
    RuntimeError("openai: HTTP 401 unauthorized (check the API key)"),
    ConnectionError(),
    "utter garbage",
    '{"intent": "marketing", "confidence": 1}',
])
async def test_llm_failure_falls_back_to_keywords(finance: Team, failure: object) -> None:
    result = await classify(with_mode(finance, "llm"), "Here's a receipt from lunch", Replies(failure))
    assert (result.intent, result.method) == ("receipts", "keyword")
    assert "used keywords" in result.reasoning


async def test_llm_timeout_falls_back(finance: Team) -> None:
    async def never(messages: list[dict[str, str]]) -> str:
        await asyncio.Event().wait()
        return ""

    result = await classify(with_mode(finance, "llm"), "receipt", never, timeout=0.05)
    assert result.intent == "receipts" and "did not answer within 0.05s" in result.reasoning


async def test_no_model_configured_means_keywords_then_semantic(finance: Team) -> None:
    result = await classify(with_mode(finance, "llm"), "receipt", None)
    assert (result.method, result.intent) == ("semantic", "receipts")
    assert "no model configured" in result.reasoning


async def test_hybrid_skips_the_model_when_keywords_are_confident(finance: Team) -> None:
    model = Replies()
    result = await classify(finance, "Here's the receipt for the taxi", model)
    assert result.method == "keyword" and result.intent == "receipts" and model.calls == []


def unsure_semantic(team: Team) -> Team:
    """A floor no message reaches: the semantic stage is always unsure, so hybrid goes on to the model."""
    router = team.spec.router.model_copy(update={"similarity_floor": 0.99})
    return team.model_copy(update={"spec": team.spec.model_copy(update={"router": router})})


async def test_hybrid_asks_the_model_when_keywords_and_semantic_are_unsure(finance: Team) -> None:
    model = Replies('```json\n{"intent": "receivables", "confidence": 0.88}\n```')
    result = await classify(unsure_semantic(finance), "Mark the Wayne Enterprises invoice as paid", model)  # tie
    assert len(model.calls) == 1
    assert (result.intent, result.method, result.needs_clarification) == ("receivables", "llm", False)


async def test_hybrid_with_broken_model_still_asks_when_unsure(finance: Team) -> None:
    result = await classify(unsure_semantic(finance), "Mark the invoice as paid", Replies(TimeoutError()))
    assert result.needs_clarification and result.method == "clarify"
    assert "used semantic similarity" in result.reasoning


async def test_hybrid_skips_the_model_when_semantic_is_sure(finance: Team) -> None:
    model = Replies()
    result = await classify(finance, "Are we profitable yet?", model)
    assert (result.method, result.intent) == ("semantic", "reporter") and model.calls == []


async def test_keyword_mode_never_calls_the_model(finance: Team) -> None:
    model = Replies()
    await classify(with_mode(finance, "keyword"), "Mark the invoice as paid", model)
    assert model.calls == []


async def test_scripted_model_reads_the_prompt(finance: Team) -> None:
    """The fake used for hybrid accuracy answers from the prompt's descriptions and examples."""
    model = ScriptedModel()
    result = await classify(with_mode(finance, "llm"), "Create an invoice for the Johnson project", model)
    assert result.intent == "receivables" and result.method == "llm"
    result = await classify(with_mode(finance, "llm"), "Write me a haiku about autumn", model)
    assert result.agent is None and result.needs_clarification
