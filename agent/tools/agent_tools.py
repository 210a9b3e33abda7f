"""The agent's tools, assembled from its configuration: the built-ins it was given, its MCP servers,
its approval policy and limits. One object the HTTP layer (agent/app.py) asks for a turn's events."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import httpx

from agent.providers import ProviderConfig, ProviderError, stream_chat
from agent.tools.approvals import ApprovalBoard
from agent.tools.base import Tool, ToolCall, ToolError
from agent.tools.loop import Event, Limits, TextDelta, Toolbox, run_turn
from agent.tools.mcp_servers import MCPServers
from agent.tools.workspace import Workspace


class AgentTools:
    def __init__(self, config: Any):
        self.config = config.tools
        self.workspace = Workspace(
            config.workspace_dir,
            output_limit=self.config.output_limit,
            command_timeout=self.config.command_timeout,
        )
        self.builtins = self.workspace.tools(self.config.builtin)
        self.mcp = (
            MCPServers(
                self.config.mcp_servers,
                output_limit=self.config.output_limit,
                workspace=str(config.workspace_dir),
                secrets_dir=config.secrets_dir,
            )
            if self.config.mcp_servers
            else None
        )
        self.approvals = ApprovalBoard()
        self.limits = Limits(self.config.max_steps, self.config.turn_timeout, self.config.approval_timeout)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def starting(self) -> bool:
        return self.mcp is not None and self.mcp.starting

    def start(self) -> None:
        if self.mcp is not None:
            self.mcp.start()

    async def close(self) -> None:
        if self.mcp is not None:
            await self.mcp.close()

    def health(self) -> dict[str, Any]:
        """What /healthz adds: the tool names, each MCP server's state, and tools_degraded (or absent)."""
        if not self.enabled:
            return {}
        out: dict[str, Any] = {
            "tools": {"builtin": list(self.config.builtin), "available": [t.name for t in self.all()]}
        }
        if self.mcp is not None:
            out["tools"]["mcp"] = self.mcp.status()
            degraded = self.mcp.degraded()
            if degraded:
                out["tools_degraded"] = degraded
        return out

    def all(self) -> list[Tool]:
        return self.builtins + (self.mcp.tools() if self.mcp is not None else [])

    def toolbox(self) -> Toolbox:
        return Toolbox(self.all(), self.config.needs_approval)

    def run_turn(
        self,
        provider: ProviderConfig,
        messages: list[dict[str, Any]],
        client: httpx.AsyncClient | None,
        transcript: list[dict[str, Any]],
        *,
        interactive: bool = True,
    ) -> AsyncGenerator[Event, None]:
        def step(msgs: list[dict[str, Any]], tools: Sequence[Tool]) -> AsyncIterator[str | ToolCall]:
            return stream_chat(provider, msgs, client=client, tools=tools)

        async def approve(call: ToolCall, wait: float) -> bool | None:
            if not interactive:
                raise ToolError(f"{call.name} needs approval, and this request is not streamed (nobody can approve)")
            return await self.approvals.wait(call.id, wait)

        return run_turn(step, messages, self.toolbox(), approve, self.limits, transcript)

    async def complete_turn(
        self,
        provider: ProviderConfig,
        messages: list[dict[str, Any]],
        client: httpx.AsyncClient | None,
        transcript: list[dict[str, Any]],
    ) -> str:
        """A non-streamed turn: the loop runs to the end; approvals are denied (no one can answer)."""
        text: list[str] = []
        async for event in self.run_turn(provider, messages, client, transcript, interactive=False):
            if isinstance(event, TextDelta):
                text.append(event.text)
        return str(transcript[-1]["content"]) if transcript else "".join(text)


def turn_failed_note(err: BaseException) -> str:
    if isinstance(err, ProviderError):
        return f"[turn failed after running tools: {err}]"
    return "[turn failed after running tools: the turn used its whole time budget]"
