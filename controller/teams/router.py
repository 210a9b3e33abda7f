"""Keyword routing of a team message to an intent, and the pure decisions around it.

Everything here is a pure function of (team, message[, previous intent]) so it is cheap to test and to
benchmark; the LLM path (llm_router.py) and the chat endpoint only add I/O around these decisions.

Scoring, and why:
- A keyword matches whole words after stemming (text.py), so "pay" never matches "display" but
  "paying" matches "pay". A multi-word keyword matches the same words in sequence, articles and
  possessives ignored ("bill client" matches "bill the client").
- A keyword's weight is its number of words: "bill client" is more specific than "bill". When a match
  lies inside a longer match (of any intent) it is dropped: the longer phrase explains those words.
- An intent's score is the sum of its distinct matched keywords' weights (more matches, more score).
- Confidence grows with the winner's margin over the runner-up: 1 - 0.5**(margin+1). One single-word
  hit (margin 1) is 0.75 and routes at the default threshold 0.7; a two-word phrase against a single
  word elsewhere also routes; a tie (margin 0) is 0.5 and never does; each further point of margin
  halves the remaining doubt. Evidence for another intent therefore lowers confidence.
- Ties break by the intents' declared order, so the same message always goes to the same agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from controller.resources import Team
from controller.teams.text import content_stems, words

UNKNOWN = "unknown"
Method = Literal["keyword", "semantic", "llm", "fallback", "sticky", "clarify", "user"]


@dataclass(frozen=True)
class Classification:
    """Where a message goes. `agent` is None exactly when the router has no one to send it to."""

    intent: str
    confidence: float
    matched_keywords: tuple[str, ...]
    needs_clarification: bool
    agent: str | None
    reasoning: str
    method: Method
    scores: tuple[tuple[str, float], ...] = field(default=())
    mode: str = ""  # the team's router mode that produced this (method says which stage decided)

    def to_json(self) -> dict[str, object]:
        return {
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "matched_keywords": list(self.matched_keywords),
            "needs_clarification": self.needs_clarification,
            "agent": self.agent,
            "reasoning": self.reasoning,
            "method": self.method,
            "mode": self.mode,
            "top_intents": [{"intent": i, "score": round(float(s), 4)} for i, s in self.scores[:3]],
        }


@dataclass(frozen=True)
class _Keyword:
    intent: str
    text: str
    stems: tuple[str, ...]
    order: int  # the intent's declared position: the tie-breaker

    @property
    def weight(self) -> float:
        return float(len(self.stems))


@dataclass(frozen=True)
class _Match:
    keyword: _Keyword
    start: int
    end: int

    def inside(self, other: _Match) -> bool:
        return (
            other is not self
            and other.start <= self.start
            and self.end <= other.end
            and (other.end - other.start) > (self.end - self.start)
        )


def margin_confidence(margin: float) -> float:
    return 1.0 - 0.5 ** (margin + 1.0)


class KeywordRouter:
    """A team's keywords compiled once (indexed by first stem) so classify costs one pass per message."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.intents: tuple[str, ...] = tuple(team.spec.agents)
        self._index: dict[str, list[_Keyword]] = {}
        for order, intent in enumerate(self.intents):
            routing = team.spec.routing.get(intent)
            for text in routing.keywords if routing else ():
                kw_stems = content_stems(text)
                if kw_stems:
                    self._index.setdefault(kw_stems[0], []).append(_Keyword(intent, text, kw_stems, order))

    def matches(self, message: str) -> list[_Match]:
        msg = content_stems(message)
        found: list[_Match] = []
        for i, first in enumerate(msg):
            for kw in self._index.get(first, ()):
                n = len(kw.stems)
                if msg[i : i + n] == kw.stems:
                    found.append(_Match(kw, i, i + n))
        return [m for m in found if not any(m.inside(o) for o in found)]

    def classify(self, message: str) -> Classification:
        spec = self.team.spec
        scores: dict[str, float] = {}
        matched: dict[str, list[str]] = {}
        for m in self.matches(message):
            hits = matched.setdefault(m.keyword.intent, [])
            if m.keyword.text not in hits:  # a keyword said twice counts once
                hits.append(m.keyword.text)
                scores[m.keyword.intent] = scores.get(m.keyword.intent, 0.0) + m.keyword.weight
        order = {intent: i for i, intent in enumerate(self.intents)}
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))
        if not ranked:
            return no_match(self.team, "no routing keyword matched")
        (best, top), runner = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
        confidence = margin_confidence(top - runner)
        reasoning = f"matched {', '.join(repr(k) for k in matched[best])} (score {top:g}"
        reasoning += f" vs {ranked[1][0]} {runner:g})" if len(ranked) > 1 else ")"
        low = confidence < spec.router.confidence_threshold
        return Classification(
            intent=best,
            confidence=confidence,
            matched_keywords=tuple(matched[best]),
            needs_clarification=low and spec.router.clarify_on_low_confidence,
            agent=agent_for(self.team, best),
            reasoning=reasoning,
            method="keyword",
            scores=tuple(ranked),
        )


def classify_keywords(team: Team, message: str) -> Classification:
    """Keyword classification without a compiled router (compile per call; fine for one-off calls)."""
    return KeywordRouter(team).classify(message)


def agent_for(team: Team, intent: str) -> str | None:
    entry = team.spec.agents.get(intent)
    return entry.agent if entry else None


def no_match(team: Team, reasoning: str, confidence: float = 0.0) -> Classification:
    """Nothing applies: the fallback intent if the team has one, else ask the user (no one to send to)."""
    fallback = team.spec.fallback_intent
    if fallback:
        return Classification(
            intent=fallback, confidence=confidence, matched_keywords=(), needs_clarification=False,
            agent=agent_for(team, fallback), reasoning=f"{reasoning}; using the fallback intent",
            method="fallback",
        )
    return Classification(
        intent=UNKNOWN, confidence=confidence, matched_keywords=(), needs_clarification=True,
        agent=None, reasoning=reasoning, method="clarify",
    )


def apply_stickiness(team: Team, previous_intent: str | None, new: Classification) -> Classification:
    """A follow-up in a session stays with the previous agent unless it clearly belongs elsewhere.

    "Clearly" means: the new classification routes without clarification, to a different intent, by
    evidence (keywords, semantic similarity or the LLM) rather than by the fallback, at or above the team's threshold.
    Everything else ("and what about last month?", an unclear message) stays where it was.
    """
    if not previous_intent or previous_intent not in team.spec.agents:
        return new
    if new.intent == previous_intent and not new.needs_clarification:
        return new
    clearly_elsewhere = (
        not new.needs_clarification
        and new.method in ("keyword", "semantic", "llm")
        and new.intent != previous_intent
        and new.confidence >= team.spec.router.confidence_threshold
    )
    if clearly_elsewhere:
        return new
    return replace(
        new,
        intent=previous_intent,
        agent=agent_for(team, previous_intent),
        needs_clarification=False,
        method="sticky",
        reasoning=f"follow-up stays with {previous_intent} ({new.reasoning})",
    )


def resolve_clarification_reply(team: Team, reply: str) -> str | None:
    """The intent a user picked when asked to clarify: its intent name, agent name, or option number."""
    intents = list(team.spec.agents)
    tokens = words(reply)
    if len(tokens) == 1 and tokens[0].isdigit() and 1 <= int(tokens[0]) <= len(intents):
        return intents[int(tokens[0]) - 1]
    norm = " ".join(tokens)
    for intent, entry in team.spec.agents.items():
        if norm in (" ".join(words(intent)), entry.agent.lower()):
            return intent
    return None


def _fill(template: str, team: Team, intent: str | None) -> str:
    # str.replace, not str.format: a stray brace in a user's template must not raise.
    agent = agent_for(team, intent) if intent else None
    entry = team.spec.agents.get(intent) if intent else None
    text = template.replace("{agent_name}", agent or "")
    text = text.replace("{intent}", intent or "")
    return text.replace("{description}", entry.description if entry else "")


def routing_ack(team: Team, intent: str) -> str:
    return _fill(team.spec.responses.routing_ack, team, intent)


def agent_prefix(team: Team, intent: str) -> str:
    return _fill(team.spec.responses.agent_response_prefix, team, intent)


def clarification_options(team: Team, candidates: Sequence[str] = ()) -> list[str]:
    """Intents to offer: the candidates that scored, else every intent, in declared order."""
    chosen = [i for i in team.spec.agents if i in candidates] if len(candidates) > 1 else []
    return chosen or list(team.spec.agents)


def clarification_message(team: Team, options: Sequence[str], attempt: int = 0) -> str:
    """The question and one line per option (options_format with {intent} and {description})."""
    prompts = team.spec.clarification.prompts
    lead = prompts[attempt % len(prompts)] if prompts else team.spec.responses.clarification_needed
    fmt = team.spec.clarification.options_format
    lines = [_fill(fmt, team, intent) for intent in options]
    return "\n".join([lead, *lines])
