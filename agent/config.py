"""The agent's configuration, from the CLAWPEN_* environment the controller sets in its container.

Read once at start, except the API key, which is read from /run/secrets/<NAME> (then the environment)
each time it is needed so a rotated secret file takes effect without a restart, and so /healthz can
turn ready the moment the secret appears.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.providers import ProviderConfig
from agent.tools.config import ToolsConfig

KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
TOKEN_FILE_NAME = "clawpen-agent-token"  # controller.agent_token.TOKEN_NAME (the agent has no controller package)
PLACEHOLDER = re.compile(r"\{\{\s*(name|model|provider|project)\s*\}\}")


@dataclass(frozen=True)
class AgentConfig:
    name: str = ""
    namespace: str = "default"
    project: str = ""
    provider: str = ""  # catalog key, e.g. openai
    provider_name: str = ""  # display name, e.g. OpenAI
    api_style: str = "openai"
    base_url: str = ""
    model: str = ""
    api_key_name: str = ""
    api_key_optional: bool = False  # local servers (vLLM, LiteLLM) name a key they may not require
    system_prompt_template: str = ""
    data_dir: Path = Path("/data")
    port: int = 8080
    request_timeout: float = 120.0
    history_chars: int = 200_000  # at most this much stored history is sent per turn (~50k tokens)
    secrets_dir: Path = Path("/run/secrets")
    workspace_dir: Path = Path("/workspace")
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentConfig:
        e = dict(os.environ if env is None else env)

        def number(name: str, default: float) -> float:
            raw = e.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None
            if value <= 0:
                raise ValueError(f"{name}={raw!r} must be positive")
            return value

        return cls(
            name=e.get("CLAWPEN_AGENT_NAME", ""),
            namespace=e.get("CLAWPEN_AGENT_NAMESPACE", "default") or "default",
            project=e.get("CLAWPEN_AGENT_PROJECT", ""),
            provider=e.get("CLAWPEN_PROVIDER", ""),
            provider_name=e.get("CLAWPEN_PROVIDER_NAME", ""),
            api_style=(e.get("CLAWPEN_API_STYLE", "") or "openai").strip().lower(),
            base_url=e.get("CLAWPEN_BASE_URL", "").strip(),
            model=e.get("CLAWPEN_MODEL", "").strip(),
            api_key_name=e.get("CLAWPEN_API_KEY_NAME", "").strip(),
            api_key_optional=e.get("CLAWPEN_API_KEY_OPTIONAL", "").strip().lower() in ("1", "true", "yes"),
            system_prompt_template=e.get("CLAWPEN_SYSTEM_PROMPT", ""),
            data_dir=Path(e.get("CLAWPEN_DATA_DIR", "") or "/data"),
            port=int(number("CLAWPEN_AGENT_PORT", 8080)),
            request_timeout=number("CLAWPEN_REQUEST_TIMEOUT", 120.0),
            history_chars=int(number("CLAWPEN_HISTORY_CHARS", 200_000)),
            # Not part of the controller's contract: lets tests and non-container runs point elsewhere.
            secrets_dir=Path(e.get("CLAWPEN_SECRETS_DIR", "") or "/run/secrets"),
            workspace_dir=Path(e.get("CLAWPEN_WORKSPACE", "") or "/workspace"),
            tools=ToolsConfig.from_env(e),
            env=e,
        )

    @property
    def token_file(self) -> Path:
        """The bearer token callers must present (see agent.app.RequireToken)."""
        return self.secrets_dir / TOKEN_FILE_NAME

    @property
    def display_provider(self) -> str:
        return self.provider_name or self.provider or "provider"

    def api_key(self) -> str | None:
        """The key from the secret file first, the environment second; None when none is named or found."""
        if not self.api_key_name or not KEY_NAME.fullmatch(self.api_key_name):
            return None
        try:
            value = (self.secrets_dir / self.api_key_name).read_text().strip()
            if value:
                return value
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            pass
        return (self.env.get(self.api_key_name) or "").strip() or None

    def not_ready_reason(self) -> str | None:
        """Why the agent cannot chat yet (None when it can). Never includes the key."""
        if self.api_style not in ("openai", "anthropic"):
            return f"CLAWPEN_API_STYLE={self.api_style!r} is not 'openai' or 'anthropic'"
        if not self.model:
            return "no model configured (CLAWPEN_MODEL)"
        if not self.base_url:
            return "no provider base URL configured (CLAWPEN_BASE_URL)"
        if not self.base_url.startswith(("http://", "https://")):
            return f"CLAWPEN_BASE_URL {self.base_url!r} is not an http(s) URL"
        if self.api_key_name and not KEY_NAME.fullmatch(self.api_key_name):
            return f"CLAWPEN_API_KEY_NAME {self.api_key_name[:40]!r} is not a valid variable name"
        if self.api_key_name and not self.api_key_optional and self.api_key() is None:
            return (
                f"API key {self.api_key_name} not found "
                f"(neither {self.secrets_dir / self.api_key_name} nor the environment)"
            )
        return None

    def system_prompt(self) -> str:
        values = {
            "name": self.name,
            "model": self.model,
            "provider": self.display_provider,
            "project": self.project,
        }
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], self.system_prompt_template).strip()

    def provider_config(self) -> ProviderConfig:
        """Only valid when not_ready_reason() is None."""
        return ProviderConfig(
            name=self.display_provider,
            api_style=self.api_style,  # type: ignore[arg-type]
            base_url=self.base_url,
            model=self.model,
            api_key=self.api_key(),
            timeout=self.request_timeout,
        )
