"""A deterministic stand-in for the routing LLM (the only fake these tests allow: a model provider).

It knows nothing about the labelled set or the keyword lists. Like a real model it only sees the
prompt that llm_router.build_messages sends: it reads the intents, their descriptions and examples
from the system message, and answers with the intent whose words overlap the user's message most
(weighted so that words shared by every intent count for little). So the hybrid accuracy it yields
measures the prompt's content and the reply parser, not a lookup table. Replies come in the shapes
real models produce (bare JSON, JSON in a code fence, JSON inside prose), cycling deterministically.
"""

from __future__ import annotations

import json
import math
import re

from controller.teams.text import content_stems

STOP = frozenset(
    "i me we us you it is are was be been do does did to of in on for with at by from and or but not "
    "can could would should will what which who whom how when where why there here some any all no "
    "please need needs want get got have has had so than then just about up out into over last next".split()
)
INTENT_LINE = re.compile(r"^- (?P<intent>[^:]+): (?P<description>.*)$")
EXAMPLE_LINE = re.compile(r"^\s+example: (?P<example>.*)$")


def _vocab(text: str) -> set[str]:
    return {s for s in content_stems(text) if s not in STOP and len(s) > 1}


def read_prompt(system: str) -> dict[str, set[str]]:
    """intent -> the words of its description and examples, as listed in the prompt."""
    intents: dict[str, set[str]] = {}
    current: str | None = None
    for line in system.splitlines():
        if m := INTENT_LINE.match(line):
            current = m["intent"]
            intents[current] = _vocab(m["description"])
        elif (m := EXAMPLE_LINE.match(line)) and current:
            intents[current] |= _vocab(m["example"])
    return intents


class ScriptedModel:
    """`await model(messages)` returns a reply text, like agent/providers' complete()."""

    def __init__(self) -> None:
        self.calls = 0

    def choose(self, system: str, message: str) -> tuple[str, float]:
        intents = read_prompt(system)
        words = _vocab(message)
        df: dict[str, int] = {}
        for vocab in intents.values():
            for w in vocab:
                df[w] = df.get(w, 0) + 1
        n = len(intents) or 1
        scores = {
            intent: sum(math.log(1 + n / df[w]) for w in words & vocab) for intent, vocab in intents.items()
        }
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        if not ranked or ranked[0][1] == 0:
            return "none", 0.9
        best, top = ranked[0]
        runner = ranked[1][1] if len(ranked) > 1 else 0.0
        return best, round(min(0.95, 0.5 + 0.5 * (top - runner) / top), 2)

    async def __call__(self, messages: list[dict[str, str]]) -> str:
        self.calls += 1
        system = next(m["content"] for m in messages if m["role"] == "system")
        user = [m["content"] for m in messages if m["role"] == "user"][-1]
        intent, confidence = self.choose(system, user)
        body = json.dumps({"intent": intent, "confidence": confidence, "reasoning": "closest description"})
        shape = self.calls % 3
        if shape == 0:
            return body
        if shape == 1:
            return f"```json\n{body}\n```"
        return f"Sure! Here is my classification: {body} Let me know if you need more."
