"""One team chat session's routing state: who answered last, and a pending clarification question.

Why separate from the WebSocket route: the decisions (stick with the last agent, ask, understand the
answer to a question, forward the original message once the user picked) are the part worth testing
exhaustively, and none of them need a socket. The route only turns decisions into frames and relays
the chosen agent's streamed answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from controller.resources import Team
from controller.teams.router import (
    Classification,
    agent_for,
    apply_stickiness,
    clarification_message,
    clarification_options,
    resolve_clarification_reply,
    routing_ack,
)

Classify = Callable[[Team, str], Awaitable[Classification]]
Learn = Callable[[Team, str, str], bool]  # (team, intent, message) -> stored


@dataclass(frozen=True)
class Route:
    """Send `message` to `agent`; `ack` is the team's routing acknowledgement."""

    intent: str
    agent: str
    message: str
    ack: str
    classification: Classification


@dataclass(frozen=True)
class Clarify:
    """Ask the user to choose; `options` are intents in declared order."""

    text: str
    options: tuple[str, ...]
    classification: Classification


@dataclass
class Conversation:
    """Routing memory for one session of one team."""

    team: Team
    previous_intent: str | None = None
    pending_message: str | None = None  # the message that prompted the open clarification question
    pending_options: tuple[str, ...] = field(default=())
    attempts: int = 0
    learn: Learn | None = None  # called when the user picks an intent (it stores only if router.learn)

    def _route(self, intent: str, message: str, classification: Classification) -> Route:
        self.previous_intent = intent
        self.pending_message, self.pending_options, self.attempts = None, (), 0
        agent = agent_for(self.team, intent)
        assert agent is not None  # intents always map to an agent (TeamSpec validates it)
        return Route(intent, agent, message, routing_ack(self.team, intent), classification)

    def _clarify(self, message: str, classification: Classification) -> Clarify:
        candidates = [intent for intent, _ in classification.scores]
        options = tuple(clarification_options(self.team, candidates))
        text = clarification_message(self.team, options, self.attempts)
        self.pending_message = self.pending_message or message
        self.pending_options = options
        self.attempts += 1
        return Clarify(text, options, classification)

    async def decide(self, message: str, classify: Classify) -> Route | Clarify:
        if self.pending_message is not None:
            picked = resolve_clarification_reply(self.team, message)
            if picked is not None:
                if self.learn is not None and self.team.spec.router.learn:
                    self.learn(self.team, picked, self.pending_message)
                chosen = Classification(
                    intent=picked, confidence=1.0, matched_keywords=(), needs_clarification=False,
                    agent=agent_for(self.team, picked), reasoning="chosen by the user", method="user",
                )
                return self._route(picked, self.pending_message, chosen)
            # Not a pick: maybe the user rephrased. Route the rephrasing if it is clear on its own.
            result = await classify(self.team, message)
            if not result.needs_clarification and result.agent is not None:
                return self._route(result.intent, message, result)
            return self._clarify(message, result)
        result = apply_stickiness(self.team, self.previous_intent, await classify(self.team, message))
        if result.needs_clarification or result.agent is None:
            return self._clarify(message, result)
        return self._route(result.intent, message, result)
