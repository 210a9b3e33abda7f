"""Tool calling on the two wire protocols, kept apart from the plain-chat adapters in providers.py.

The agent keeps one neutral form of a conversation (what the session file stores):
  {"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments": {...}}]}
  {"role": "tool", "tool_call_id": str, "name": str, "content": str, "is_error": bool}
and translates it per request: OpenAI's `tool_calls`/`role: tool`, or Anthropic's `tool_use` and
`tool_result` content blocks. Streamed tool calls arrive in pieces (argument JSON split across
deltas); the accumulators below put them together and hand the loop whole ToolCalls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent.tools.base import Tool, ToolCall

Message = dict[str, Any]


def has_tool_records(messages: Sequence[Message]) -> bool:
    return any(m.get("tool_calls") or m["role"] == "tool" for m in messages)


# ---- OpenAI ----------------------------------------------------------------------------------------
def openai_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def openai_messages(messages: Sequence[Message]) -> list[Message]:
    out: list[Message] = []
    for m in messages:
        if m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]})
        elif m.get("tool_calls"):
            out.append(
                {
                    "role": "assistant",
                    "content": m["content"] or None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments") or {})},
                        }
                        for c in m["tool_calls"]
                    ],
                }
            )
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


class OpenAIToolCalls:
    """Collects `delta.tool_calls` pieces by index."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> None:
        for d in deltas or []:
            if not isinstance(d, dict):
                continue
            slot = self.parts.setdefault(int(d.get("index", len(self.parts))), {"id": "", "name": "", "args": ""})
            fn = d.get("function") or {}
            slot["id"] = d.get("id") or slot["id"]
            slot["name"] = fn.get("name") or slot["name"]
            slot["args"] += fn.get("arguments") or ""

    def calls(self) -> list[ToolCall]:
        return [_call(p["id"] or f"call_{i}", p["name"], p["args"]) for i, p in sorted(self.parts.items())]


# ---- Anthropic -------------------------------------------------------------------------------------
def anthropic_body(
    model: str, max_tokens: int, messages: Sequence[Message], stream: bool, tools: Sequence[Tool] = ()
) -> dict[str, Any]:
    """Anthropic takes system text as a field and wants strictly alternating user/assistant turns.

    Plain chats keep plain string turns (merged with blank lines); with tools, content blocks."""
    system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system")
    turns: list[Message]
    if tools or has_tool_records(messages):
        turns = anthropic_turns(messages)
    else:
        turns = []
        for m in messages:
            if m["role"] == "system":
                continue
            role = "assistant" if m["role"] == "assistant" else "user"
            if turns and turns[-1]["role"] == role:
                turns[-1] = {"role": role, "content": f"{turns[-1]['content']}\n\n{m['content']}"}
            else:
                turns.append({"role": role, "content": m["content"]})
        while turns and turns[0]["role"] == "assistant":  # the API wants the first turn to be the user's
            turns.pop(0)
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if tools:
        body["tools"] = anthropic_tools(tools)
    if system:
        body["system"] = system
    if stream:
        body["stream"] = True
    return body


def anthropic_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def anthropic_turns(messages: Sequence[Message]) -> list[Message]:
    """Content-block turns: tool calls as tool_use blocks, results as tool_result blocks in a user turn;
    consecutive same-role turns merged (the API wants them alternating), starting with the user."""
    turns: list[Message] = []
    for m in messages:
        if m["role"] == "system":
            continue
        blocks: list[dict[str, Any]] = []
        if m["role"] == "tool":
            role = "user"
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": m["tool_call_id"],
                    "content": m["content"] or "(no output)",
                    "is_error": bool(m.get("is_error")),
                }
            )
        else:
            role = "assistant" if m["role"] == "assistant" else "user"
            if m["content"]:
                blocks.append({"type": "text", "text": m["content"]})
            for c in m.get("tool_calls") or []:
                blocks.append({"type": "tool_use", "id": c["id"], "name": c["name"], "input": c.get("arguments") or {}})
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    while turns and turns[0]["role"] == "assistant":
        turns.pop(0)
    return turns


class AnthropicToolCalls:
    """Collects tool_use blocks: content_block_start gives id and name, input_json_delta the input."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, str]] = {}

    def start(self, index: int, block: dict[str, Any]) -> None:
        if block.get("type") == "tool_use":
            initial = block.get("input")
            self.blocks[index] = {
                "id": str(block.get("id", "")),
                "name": str(block.get("name", "")),
                "args": "",
                "initial": json.dumps(initial) if initial else "",
            }

    def delta(self, index: int, delta: dict[str, Any]) -> None:
        if index in self.blocks and delta.get("type") == "input_json_delta":
            self.blocks[index]["args"] += delta.get("partial_json") or ""

    def calls(self) -> list[ToolCall]:
        return [
            _call(b["id"] or f"toolu_{i}", b["name"], b["args"] or b["initial"]) for i, b in sorted(self.blocks.items())
        ]


def _call(call_id: str, name: str, raw: str) -> ToolCall:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return ToolCall(call_id, name, None, raw)
    return ToolCall(call_id, name, value if isinstance(value, dict) else None, raw)
