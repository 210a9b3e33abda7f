"""MCP servers as tool sources, through the `mcp` SDK's ClientSession (stdio and streamable HTTP).

Each server lives in its own long-running task: the SDK's transports are anyio task groups that must
be entered and left in one task, and a server that dies must not take the agent (or the other servers)
with it. A server that fails to start, list its tools or answer is reported (`degraded()`, which the
agent's /healthz carries to the controller as the ToolsDegraded condition) and simply contributes no
tools; the agent keeps working with the rest.

The SDK is imported only when a server is configured: it and pydantic cost ~25 MB of memory that a
chat-only agent should not pay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.tools.base import Tool, ToolError, ToolResult, cap
from agent.tools.config import MCPServer

log = logging.getLogger("agent.mcp")
CONNECT_TIMEOUT = 60.0  # a stdio server written in Python may take seconds to import on a busy host
# Variables a Python-based stdio server installed in the image needs to find its packages.
PASSED_THROUGH = ("PYTHONPATH", "PYTHONSAFEPATH", "PYTHONDONTWRITEBYTECODE", "LANG", "TZ")
TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
SECRETS_DIR = Path("/run/secrets")


@dataclass
class ServerState:
    config: MCPServer
    session: Any = None
    tools: list[Tool] = field(default_factory=list)
    error: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class MCPServers:
    def __init__(
        self, servers: tuple[MCPServer, ...], *, output_limit: int, workspace: str, secrets_dir: Path = SECRETS_DIR
    ):
        self.output_limit = output_limit
        self.workspace = workspace
        self.secrets_dir = secrets_dir
        self.states = [ServerState(s) for s in servers]

    def start(self) -> None:
        self._sdk = asyncio.create_task(asyncio.to_thread(_import_sdk), name="mcp-import")
        for state in self.states:
            state.task = asyncio.create_task(self._run(state), name=f"mcp-{state.config.name}")

    _sdk: asyncio.Task[None]

    @property
    def starting(self) -> bool:
        return any(not s.ready.is_set() for s in self.states)

    def degraded(self) -> str | None:
        """One line naming every failed server and why; None when all work."""
        bad = [f"{s.config.name}: {s.error}" for s in self.states if s.ready.is_set() and s.error]
        return "; ".join(bad) if bad else None

    def status(self) -> dict[str, Any]:
        return {
            s.config.name: {
                "transport": s.config.transport,
                "state": "starting" if not s.ready.is_set() else ("failed" if s.error else "ok"),
                "tools": [t.name for t in s.tools],
                **({"error": s.error} if s.error else {}),
            }
            for s in self.states
        }

    def tools(self) -> list[Tool]:
        return [t for s in self.states if s.session is not None and not s.error for t in s.tools]

    async def close(self) -> None:
        for state in self.states:
            state.stop.set()
        tasks = [s.task for s in self.states if s.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()

    # ---- one server ------------------------------------------------------------------------------
    async def _run(self, state: ServerState) -> None:
        name = state.config.name
        try:
            await self._sdk  # imported off the event loop: /healthz keeps answering meanwhile
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    session = await self._connect(state.config, stack)
                    listed = await session.list_tools()
                state.tools = [self._tool(state, t) for t in listed.tools]
                state.session = session
                log.info(
                    "mcp %s: connected (%s), tools: %s",
                    name,
                    state.config.transport,
                    ", ".join(t.name for t in state.tools) or "none",
                )
                state.ready.set()
                await state.stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # noqa: BLE001 - a server's failure is reported, never fatal
            state.error = _describe(err)
            log.warning("mcp %s: %s", name, state.error)
        finally:
            state.session = None
            state.ready.set()

    async def _connect(self, server: MCPServer, stack: contextlib.AsyncExitStack) -> Any:
        from mcp import ClientSession

        if server.url:
            import httpx
            from mcp.client.streamable_http import streamable_http_client

            http = await stack.enter_async_context(
                httpx.AsyncClient(headers=self._headers(server), timeout=httpx.Timeout(30.0, read=300.0))
            )
            read, write, _ = await stack.enter_async_context(streamable_http_client(server.url, http_client=http))
        else:
            from mcp import StdioServerParameters
            from mcp.client.stdio import get_default_environment, stdio_client

            env = get_default_environment()
            env.update({k: os.environ[k] for k in PASSED_THROUGH if k in os.environ})
            env.update(server.env)
            env.update({key: ref.read(self.secrets_dir) for key, ref in server.secret_env.items()})
            params = StdioServerParameters(
                command=server.command or "", args=list(server.args), env=env, cwd=self.workspace
            )
            read, write = await stack.enter_async_context(stdio_client(params))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        return session

    def _headers(self, server: MCPServer) -> dict[str, str]:
        """Literal headers plus those read from secret files now (a rotated secret counts at reconnect)."""
        return {**server.headers, **{key: ref.read(self.secrets_dir) for key, ref in server.secret_headers.items()}}

    def _tool(self, state: ServerState, mcp_tool: Any) -> Tool:
        remote = str(mcp_tool.name)
        exposed = TOOL_NAME.sub("_", f"{state.config.name}__{remote}")[:64]
        schema = dict(mcp_tool.inputSchema or {"type": "object", "properties": {}})
        description = (mcp_tool.description or "").strip() or f"{remote} (MCP server {state.config.name})"
        return Tool(exposed, description[:1024], schema, self._caller(state, remote))

    def _caller(self, state: ServerState, remote: str) -> Callable[[dict[str, Any]], Any]:
        async def call(args: dict[str, Any]) -> ToolResult:
            session = state.session
            if session is None:
                raise ToolError(f"MCP server {state.config.name} is not connected ({state.error or 'stopped'})")
            try:
                result = await session.call_tool(remote, args, read_timeout_seconds=timedelta(seconds=300))
            except Exception as err:  # noqa: BLE001 - the model reads what went wrong
                raise ToolError(f"MCP server {state.config.name}: {_describe(err)}") from None
            return ToolResult(cap(_result_text(result), self.output_limit), is_error=bool(result.isError))

        return call


def _import_sdk() -> None:
    import mcp  # noqa: F401 - builds its pydantic models at import: seconds on a loaded host
    import mcp.client.stdio  # noqa: F401
    import mcp.client.streamable_http  # noqa: F401


def _result_text(result: Any) -> str:
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource" and hasattr(block.resource, "text"):
            parts.append(block.resource.text)
        else:
            parts.append(f"[{kind or 'unknown'} content not shown]")
    if not parts and getattr(result, "structuredContent", None) is not None:
        import json

        parts.append(json.dumps(result.structuredContent, ensure_ascii=False))
    return "\n".join(parts)


def _describe(err: BaseException) -> str:
    """The innermost useful message (anyio wraps failures in exception groups)."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    if isinstance(err, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g}s"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}"[:300] if text else type(err).__name__
