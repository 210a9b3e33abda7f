"""spec.tools → what the agent program receives (CLAWPEN_TOOLS, one JSON document). Pure.

Kept apart from translate() so the `clawpen` agent program (controller/programs/) can call it as it
is; translate() only merges the result into the container's environment. The template supplies the
default built-ins (templates/agents.yaml: `tools: {builtin: [...]}`), the spec overrides them. An
agent with no built-ins and no MCP servers gets nothing, and chats exactly as before tools existed.

Nothing secret belongs here: the environment is visible to `docker inspect`. An MCP server's
credentials travel by name only (secretHeaders / secretEnv → {secret, prefix}); translate mounts those
secrets as files and the agent reads /run/secrets/NAME when it connects to the server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from controller.resources import ToolsSpec

TOOLS_ENV = "CLAWPEN_TOOLS"


def render_tools(tools: ToolsSpec | None, template_builtin: Sequence[str] | None = None) -> dict[str, str]:
    """The environment entries for the agent: {} or {"CLAWPEN_TOOLS": "<json>"}."""
    spec = tools or ToolsSpec()
    builtin = list(spec.builtin) if spec.builtin is not None else list(template_builtin or [])
    if not builtin and not spec.mcp_servers:
        return {}
    document: dict[str, Any] = {
        "builtin": builtin,
        "approval": approval if isinstance(approval := spec.approval.root, str) else dict(sorted(approval.items())),
        "maxSteps": spec.max_steps,
        "turnTimeoutSeconds": spec.turn_timeout_seconds,
        "approvalTimeoutSeconds": spec.approval_timeout_seconds,
        "commandTimeoutSeconds": spec.command_timeout_seconds,
        "mcpServers": [_server(s.model_dump()) for s in spec.mcp_servers],
    }
    return {TOOLS_ENV: json.dumps(document, sort_keys=True, separators=(",", ":"))}


def _server(raw: dict[str, Any]) -> dict[str, Any]:
    if raw.get("url"):
        out = {"name": raw["name"], "url": raw["url"]}
        if raw.get("headers"):
            out["headers"] = dict(sorted(raw["headers"].items()))
        if raw.get("secret_headers"):
            out["secretHeaders"] = dict(sorted(raw["secret_headers"].items()))
        return out
    out = {
        "name": raw["name"],
        "command": raw["command"],
        "args": list(raw["args"]),
        "env": dict(sorted(raw["env"].items())),
    }
    if raw.get("secret_env"):
        out["secretEnv"] = dict(sorted(raw["secret_env"].items()))
    return out
