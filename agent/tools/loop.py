"""The tool loop: ask the model, run the tools it calls, feed the results back, until it answers in
text — bounded by a step count (spec.tools.maxSteps) and a time budget for the whole turn.

The loop yields events as they happen (text deltas, tool calls, approval requests, tool results), so a
streaming client sees the agent work, and appends every record of the exchange to `transcript` in the
session's neutral form (see wire.py), so the caller can store the whole exchange.

Tool output is data: it goes back to the model as a tool result and is shown to the user; nothing in
it is ever interpreted by the agent. Approval is asked through `approve(call)`, which the HTTP layer
answers from the client (or denies on timeout, or at once for a client that cannot answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.tools.base import Tool, ToolCall, ToolError, ToolResult

Message = dict[str, Any]
StepFn = Callable[[list[Message], Sequence[Tool]], AsyncIterator[str | ToolCall]]
ApproveFn = Callable[[ToolCall, float], Awaitable[bool | None]]  # None: no answer in time


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    call: ToolCall


@dataclass(frozen=True)
class ApprovalRequest:
    call: ToolCall
    timeout: float


@dataclass(frozen=True)
class ToolResultEvent:
    call: ToolCall
    result: ToolResult


Event = TextDelta | ToolCallEvent | ApprovalRequest | ToolResultEvent


@dataclass(frozen=True)
class Limits:
    max_steps: int = 8
    turn_timeout: float = 300.0
    approval_timeout: float = 120.0


class Toolbox:
    """The tools one turn may use, by name, and the approval policy that guards them."""

    def __init__(self, tools: Sequence[Tool], needs_approval: Callable[[str], bool] = lambda _: False):
        self.by_name = {t.name: t for t in tools}
        self.needs_approval = needs_approval

    @property
    def tools(self) -> list[Tool]:
        return list(self.by_name.values())

    async def run(self, call: ToolCall, timeout: float) -> ToolResult:
        tool = self.by_name.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.by_name)) or "none"
            return ToolResult(f"error: no tool named {call.name!r} (available: {known})", is_error=True)
        if call.arguments is None:
            return ToolResult(f"error: the arguments are not a JSON object: {call.raw_arguments[:200]!r}", True)
        try:
            async with asyncio.timeout(timeout):
                return await tool.handler(call.arguments)
        except ToolError as err:
            return ToolResult(f"error: {err}", is_error=True)
        except TimeoutError:
            return ToolResult(f"error: {call.name} did not finish within the turn's time budget", is_error=True)
        except Exception as err:  # noqa: BLE001 - a tool bug is the model's error result, not a dead turn
            return ToolResult(f"error: {call.name} failed: {type(err).__name__}: {err}"[:2000], is_error=True)


async def run_turn(
    step: StepFn,
    messages: list[Message],
    toolbox: Toolbox,
    approve: ApproveFn,
    limits: Limits,
    transcript: list[Message],
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[Event, None]:
    """Run one user turn. `messages` is what the model sees (system + history + the new message);
    new records are appended to both it and `transcript`."""
    deadline = clock() + limits.turn_timeout
    steps = 0
    while True:
        text: list[str] = []
        calls: list[ToolCall] = []
        async with asyncio.timeout(max(0.001, deadline - clock())):
            async for item in step(messages, toolbox.tools):
                if isinstance(item, str):
                    text.append(item)
                    yield TextDelta(item)
                else:
                    calls.append(item)
        if not calls:
            _record(messages, transcript, {"role": "assistant", "content": "".join(text)})
            return
        if steps >= limits.max_steps or clock() >= deadline:
            why = (
                f"the model asked for more tools after {steps} steps (spec.tools.maxSteps={limits.max_steps})"
                if steps >= limits.max_steps
                else f"the turn used its whole time budget ({limits.turn_timeout:g}s)"
            )
            note = f"{chr(10) * 2 if text else ''}[stopped: {why}; say 'continue' to let me go on]"
            yield TextDelta(note)
            _record(messages, transcript, {"role": "assistant", "content": "".join(text) + note})
            return
        steps += 1
        _record(
            messages,
            transcript,
            {
                "role": "assistant",
                "content": "".join(text),
                "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments or {}} for c in calls],
            },
        )
        for call in calls:
            yield ToolCallEvent(call)
            result = None
            if toolbox.needs_approval(call.name) and call.name in toolbox.by_name:
                wait = max(0.0, min(limits.approval_timeout, deadline - clock()))
                yield ApprovalRequest(call, wait)
                try:
                    answer = await approve(call, wait)
                except ToolError as err:
                    answer, result = False, ToolResult(f"denied: {err}", is_error=True)
                if result is not None:
                    pass
                elif answer is None:
                    result = ToolResult(f"denied: nobody approved {call.name} within {wait:g}s", is_error=True)
                elif not answer:
                    result = ToolResult(f"denied: the user refused to run {call.name}", is_error=True)
            if result is None:
                result = await toolbox.run(call, max(0.001, deadline - clock()))
            yield ToolResultEvent(call, result)
            _record(
                messages,
                transcript,
                {
                    "role": "tool",
                    "tool_call_id": call.id,
                    "name": call.name,
                    "content": result.output,
                    "is_error": result.is_error,
                },
            )


def _record(messages: list[Message], transcript: list[Message], record: Message) -> None:
    messages.append(record)
    transcript.append(record)
