"""What every tool is, wherever it comes from (built-in or an MCP server): a name, a JSON schema and
an async function from arguments to a text result. The loop knows only this."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolResult:
    output: str
    is_error: bool = False


class ToolError(Exception):
    """A tool refused or failed in a way the model should read (becomes an is_error result)."""


Handler = Callable[[dict[str, Any]], Awaitable[ToolResult]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: Handler = field(repr=False, compare=False)


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for. `arguments` is None when the model's JSON did not parse."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""


def cap(text: str, limit: int) -> str:
    """At most `limit` bytes of text, with a note saying how much was cut (never silently)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return f"{kept}\n[output cut: {len(data) - limit} more bytes not shown; limit {limit} bytes]"
