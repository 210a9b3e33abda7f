"""The tools part of the agent's configuration: CLAWPEN_TOOLS (JSON, rendered by the controller).

One JSON document rather than a dozen variables because it carries lists (MCP servers with their
arguments and environment). Absent or empty means "no tools": the agent then chats exactly as it did
before tools existed (no `tools` field is ever sent to the model).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

BUILTIN_NAMES = ("read_file", "write_file", "list_files", "run_command")
SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
Policy = Literal["never", "always"]


SECRET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class SecretRef:
    """A header or variable value kept in /run/secrets/<secret>, read when the server is connected."""

    secret: str
    prefix: str = ""

    def read(self, secrets_dir: Path) -> str:
        path = secrets_dir / self.secret
        try:
            return self.prefix + path.read_text().strip()
        except OSError as err:
            raise ValueError(f"the secret {self.secret} is not readable at {path}: {err.strerror}") from None


@dataclass(frozen=True)
class MCPServer:
    """A streamable-HTTP server (`url`) or a stdio server started inside the container (`command`)."""

    name: str
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_headers: Mapping[str, SecretRef] = field(default_factory=dict)
    secret_env: Mapping[str, SecretRef] = field(default_factory=dict)

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


@dataclass(frozen=True)
class ToolsConfig:
    builtin: tuple[str, ...] = ()
    approval_default: Policy = "never"
    approval_tools: Mapping[str, Policy] = field(default_factory=dict)
    max_steps: int = 8
    turn_timeout: float = 300.0  # seconds for a whole turn: model calls, tools and approvals
    approval_timeout: float = 120.0  # no answer within this → denied
    command_timeout: float = 30.0  # run_command's default timeout_s
    output_limit: int = 64 * 1024  # bytes of tool output kept (a note says when it was cut)
    mcp_servers: tuple[MCPServer, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.builtin or self.mcp_servers)

    def needs_approval(self, tool: str) -> bool:
        return self.approval_tools.get(tool, self.approval_default) == "always"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ToolsConfig:
        raw = env.get("CLAWPEN_TOOLS", "").strip()
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ValueError(f"CLAWPEN_TOOLS is not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ValueError("CLAWPEN_TOOLS must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolsConfig:
        builtin = tuple(data.get("builtin") or ())
        unknown = [b for b in builtin if b not in BUILTIN_NAMES]
        if unknown:
            raise ValueError(f"CLAWPEN_TOOLS.builtin: unknown tool {unknown[0]!r} (known: {', '.join(BUILTIN_NAMES)})")
        approval = data.get("approval", "never")
        default: Policy = "never"
        per_tool: dict[str, Policy] = {}
        if isinstance(approval, str):
            default = _policy(approval, "approval")
        elif isinstance(approval, dict):
            for tool, policy in approval.items():
                if tool in ("*", "default"):
                    default = _policy(policy, f"approval.{tool}")
                else:
                    per_tool[str(tool)] = _policy(policy, f"approval.{tool}")
        else:
            raise ValueError("CLAWPEN_TOOLS.approval must be 'never', 'always' or {tool: policy}")
        servers = tuple(_server(s, i) for i, s in enumerate(data.get("mcpServers") or ()))
        names = [s.name for s in servers]
        if len(names) != len(set(names)):
            raise ValueError("CLAWPEN_TOOLS.mcpServers: names must be unique")
        return cls(
            builtin=builtin,
            approval_default=default,
            approval_tools=per_tool,
            max_steps=int(_positive(data, "maxSteps", 8)),
            turn_timeout=_positive(data, "turnTimeoutSeconds", 300.0),
            approval_timeout=_positive(data, "approvalTimeoutSeconds", 120.0),
            command_timeout=_positive(data, "commandTimeoutSeconds", 30.0),
            output_limit=int(_positive(data, "outputLimitBytes", 64 * 1024)),
            mcp_servers=servers,
        )


def _policy(value: Any, where: str) -> Policy:
    if value not in ("never", "always"):
        raise ValueError(f"CLAWPEN_TOOLS.{where}: {value!r} is not 'never' or 'always'")
    return "always" if value == "always" else "never"


def _positive(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"CLAWPEN_TOOLS.{key}: must be a positive number")
    return float(value)


def _server(raw: Any, index: int) -> MCPServer:
    where = f"CLAWPEN_TOOLS.mcpServers[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    name = str(raw.get("name", ""))
    if not SERVER_NAME.fullmatch(name):
        raise ValueError(f"{where}.name: {name[:40]!r} must match {SERVER_NAME.pattern}")
    url, command = raw.get("url"), raw.get("command")
    if bool(url) == bool(command):
        raise ValueError(f"{where}: give either url (streamable HTTP) or command (stdio), not both or neither")
    return MCPServer(
        name=name,
        url=str(url) if url else None,
        headers={str(k): str(v) for k, v in (raw.get("headers") or {}).items()},
        command=str(command) if command else None,
        args=tuple(str(a) for a in raw.get("args") or ()),
        env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
        secret_headers=_secret_refs(raw.get("secretHeaders"), f"{where}.secretHeaders"),
        secret_env=_secret_refs(raw.get("secretEnv"), f"{where}.secretEnv"),
    )


def _secret_refs(raw: Any, where: str) -> dict[str, SecretRef]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    refs: dict[str, SecretRef] = {}
    for key, value in raw.items():
        secret = value.get("secret") if isinstance(value, dict) else None
        if not isinstance(secret, str) or not SECRET_NAME.fullmatch(secret) or ".." in secret:
            raise ValueError(f"{where}.{key}: needs {{secret: NAME}} with NAME matching {SECRET_NAME.pattern}")
        refs[str(key)] = SecretRef(secret, str(value.get("prefix") or ""))
    return refs
