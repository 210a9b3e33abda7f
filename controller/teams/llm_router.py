"""classify(): every router mode behind one call, and the LLM router (ask the team's model).

Why the parser is paranoid: a model asked for JSON answers with JSON in prose, in code fences, with a
percentage for confidence, with the agent's name instead of the intent, or with nothing usable. The
seed's LLM mode answered "unknown" for everything; ours reads whatever is recoverable and otherwise
falls back to keyword routing, so a broken or unreachable model degrades routing, never the chat.

The model is reached through a `Complete` callable (messages -> reply text). The controller builds one
from the provider adapters in agent/providers.py; tests pass a scripted function. Keeping this module
free of HTTP keeps the decision logic pure apart from that one await.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from controller.resources import Team
from controller.teams.router import (
    Classification,
    KeywordRouter,
    agent_for,
    no_match,
)

Message = dict[str, str]
Complete = Callable[[list[Message]], Awaitable[str]]

NONE_ANSWERS = frozenset(
    {"none", "unknown", "other", "null", "n/a", "no_match", "off-topic", "off_topic", ""}
)
MISSING_CONFIDENCE = 0.5  # a verdict without a confidence is treated as unsure, never as certain
MAX_REASONING = 500
FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """What the model said, normalised. intent None means "no intent fits"."""

    intent: str | None
    confidence: float
    reasoning: str


PROMPT_EXAMPLES = 8  # per intent: semantic anchors run to ~90 per intent; the model needs a taste, not all


def prompt_examples(examples: list[str], limit: int = PROMPT_EXAMPLES) -> list[str]:
    """At most `limit` examples, spread over the list (team files group examples by sub-topic, so
    evenly spaced picks show the model the breadth of an intent, not its first sub-topic only)."""
    if len(examples) <= limit:
        return list(examples)
    return [examples[i * len(examples) // limit] for i in range(limit)]


def build_messages(team: Team, message: str) -> list[Message]:
    """The classification prompt: the team, each intent with its description and a few examples
    (PROMPT_EXAMPLES; the semantic router uses them all), the message."""
    spec = team.spec
    lines = [
        f"You route messages for the team \"{spec.display_name or team.name}\".",
    ]
    if spec.description:
        lines.append(f"Team purpose: {spec.description}")
    lines += [
        "Pick the single intent whose specialist should answer the user's message.",
        "Intents:",
    ]
    for intent, entry in spec.agents.items():
        lines.append(f"- {intent}: {entry.description or '(no description)'}")
        routing = spec.routing.get(intent)
        for example in prompt_examples(routing.examples) if routing else ():
            lines.append(f"    example: {example}")
    lines += [
        'If no intent fits, answer with intent "none".',
        "Reply with only a JSON object:",
        '{"intent": "<intent>", "confidence": <0.0-1.0>, "reasoning": "<short>"}',
    ]
    return [{"role": "system", "content": "\n".join(lines)}, {"role": "user", "content": message}]


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object recoverable from the reply: fenced blocks first, then any {...} in the prose."""
    candidates = [m.group(1) for m in FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    for chunk in candidates:
        for start in (i for i, ch in enumerate(chunk) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(chunk, start)
            except ValueError:
                continue
            if isinstance(obj, dict):
                found.append(obj)
    return found


def _confidence(value: Any) -> float:
    if isinstance(value, str):
        value = value.strip().removesuffix("%")
        try:
            value = float(value)
        except ValueError:
            return MISSING_CONFIDENCE
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return MISSING_CONFIDENCE
    if 1.0 < value <= 100.0:  # a percentage
        value = value / 100.0
    return min(1.0, max(0.0, float(value)))


def _intent(team: Team, value: Any) -> tuple[bool, str | None]:
    """(understood, intent): the intent by name (any case), or by its agent's name; None for "no intent"."""
    if value is None:
        return True, None
    if not isinstance(value, str):
        return False, None
    wanted = value.strip().strip("\"'").lower()
    if wanted in NONE_ANSWERS:
        return True, None
    for intent, entry in team.spec.agents.items():
        if wanted in (intent.lower(), entry.agent.lower()):
            return True, intent
    return False, None


def parse_reply(team: Team, text: Any) -> Verdict | None:
    """The model's verdict, or None when nothing usable is in the reply (then the caller falls back)."""
    if not isinstance(text, str):
        return None
    for obj in _json_objects(text):
        if "intent" not in obj:
            continue
        understood, intent = _intent(team, obj.get("intent"))
        if not understood:
            continue
        reasoning = obj.get("reasoning")
        reasoning = reasoning[:MAX_REASONING] if isinstance(reasoning, str) else ""
        return Verdict(intent, _confidence(obj.get("confidence", MISSING_CONFIDENCE)), reasoning)
    return None


def _from_verdict(team: Team, verdict: Verdict) -> Classification:
    if verdict.intent is None:
        return no_match(team, f"the model found no matching intent: {verdict.reasoning}".rstrip(": "),
                        confidence=verdict.confidence)
    router = team.spec.router
    low = verdict.confidence < router.confidence_threshold
    return Classification(
        intent=verdict.intent,
        confidence=verdict.confidence,
        matched_keywords=(),
        needs_clarification=low and router.clarify_on_low_confidence,
        agent=agent_for(team, verdict.intent),
        reasoning=verdict.reasoning or "chosen by the model",
        method="llm",
        scores=((verdict.intent, verdict.confidence),),
    )


async def ask_model(team: Team, message: str, complete: Complete, timeout: float | None) -> Verdict | str:
    """The model's verdict, or a one-line reason why there is none (error, timeout, garbage)."""
    try:
        reply = await asyncio.wait_for(complete(build_messages(team, message)), timeout)
    except TimeoutError:
        return f"the model did not answer within {timeout:g}s"
    except Exception as err:  # any provider failure means "no verdict", never a failed chat
        return f"the model failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    verdict = parse_reply(team, reply)
    return verdict if verdict is not None else "the model's reply had no usable {intent, confidence}"


def _with_note(result: Classification, note: str) -> Classification:
    return replace(result, reasoning=f"{result.reasoning}; {note}")


Semantic = Callable[[Team, str], Awaitable[Classification]]
OVERRULE = 0.9  # hybrid: semantic confidence at which it overrules a decisive keyword hit


async def _semantic(team: Team, message: str, semantic: Semantic | None) -> Classification | str:
    """The semantic verdict, or why there is none (the model package missing or unreadable)."""
    from controller.teams.minilm import ModelUnavailable
    from controller.teams.semantic import SemanticRouter

    try:
        return await (semantic or SemanticRouter().aclassify)(team, message)
    except ModelUnavailable as err:
        return f"semantic routing unavailable: {err}"


def _sure(result: Classification) -> bool:
    return result.method == "semantic" and not result.needs_clarification


def _overrules(sem: Classification, keyword: Classification) -> bool:
    """A keyword hit stands unless the semantic router is very sure (OVERRULE) of another intent.

    Keywords know only the words someone listed: "please pay the supplier's invoice" hits the
    receivables keyword "invoice". Measured on the development sets (bench/routing.py), letting a
    very confident semantic verdict overrule such hits fixed more messages than it broke.
    """
    return _sure(sem) and sem.intent != keyword.intent and sem.confidence >= OVERRULE


async def _classify(
    team: Team, message: str, complete: Complete | None, router: KeywordRouter,
    timeout: float | None, semantic: Semantic | None,
) -> Classification:
    mode = team.spec.router.mode
    keyword = router.classify(message)
    if mode == "keyword":
        return keyword
    decisive = keyword.method == "keyword" and not keyword.needs_clarification
    decisive = decisive and keyword.confidence >= team.spec.router.confidence_threshold
    base: Classification = keyword
    if mode in ("semantic", "hybrid") or complete is None:
        sem = await _semantic(team, message, semantic)
        if mode == "hybrid" and decisive:
            if isinstance(sem, str) or not _overrules(sem, keyword):
                return replace(keyword, reasoning=f"keyword hit: {keyword.reasoning}")
            return _with_note(sem, f"overrules the keyword hit on {keyword.intent} "
                                   f"({', '.join(keyword.matched_keywords)})")
        if isinstance(sem, str):
            if mode == "semantic":
                return _with_note(keyword, f"{sem}; used keywords")
            base = _with_note(keyword, sem)
        else:
            base = sem
        if mode == "semantic" or (mode == "hybrid" and _sure(base)):
            return base
    if complete is None:
        return _with_note(base, "no model configured for LLM routing")
    verdict = await ask_model(team, message, complete, timeout)
    if isinstance(verdict, str):
        used = "keywords" if base.method == "keyword" else "semantic similarity" if base is not keyword else base.method
        return _with_note(base, f"{verdict}; used {used}")
    result = _from_verdict(team, verdict)
    return replace(result, reasoning=f"model answer: {result.reasoning}")


async def classify(
    team: Team,
    message: str,
    complete: Complete | None = None,
    router: KeywordRouter | None = None,
    timeout: float | None = 30.0,
    semantic: Semantic | None = None,
) -> Classification:
    """Classify by the team's router mode; the one entry point for every router.

    keyword: the listed words only. semantic: embedding similarity on this machine, no model call.
    llm: the team's model (without one, keywords then semantic). hybrid: keywords when decisive (unless
    the semantic router is very sure of another intent), else semantic when sure, else the model when
    one is configured, else the semantic verdict (which asks or uses the fallback intent when unsure).
    `semantic` defaults to the process's shared SemanticRouter.
    """
    result = await _classify(team, message, complete, router or KeywordRouter(team), timeout, semantic)
    return replace(result, mode=team.spec.router.mode)
