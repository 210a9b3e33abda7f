"""Per-agent bearer tokens: the key to an agent's chat port, kept like a secret.

An agent's published port (127.0.0.1:<port>) is reachable by every local process, and the chat
contract spends the agent's API key and continues any session. So each agent gets one random token
that its program requires on everything but /healthz. The controller makes it (once, then keeps it
across restarts and replacements); the runtime delivers it as the file
/run/secrets/clawpen-agent-token, through the same path as the agent's other file secrets (tmpfs
bind mount on Docker, the agent's Secret on Kubernetes): never an env var, never in `docker inspect`.

Where the token lives:
- Docker runtime: a 0600 file under $CLAWPEN_HOME/agent-tokens/ (directory 0700);
- Kubernetes runtime: the agent's Secret (key `clawpen-agent-token`), which the operator writes and
  the gateway reads, so no second copy exists anywhere.

Everything that talks to an agent's chat contract (the gateway's chat relay, team chat, `clawpen
chat`) attaches the token with `auth_headers()`: one helper, so no caller forgets it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from controller.store.fileio import atomic_write, remove_durably

TOKEN_NAME = "clawpen-agent-token"  # the file name under /run/secrets and the key in the agent's Secret
TOKEN_PATH = f"/run/secrets/{TOKEN_NAME}"
TOKEN_SCOPE = "agent-token"
_TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_version(token: str) -> str:
    """What feeds the plan hash: changes when the token does, reveals nothing usable about it."""
    return hashlib.sha256(b"clawpen agent token\x00" + token.encode()).hexdigest()[:16]


def token_matches(expected: str, presented: str) -> bool:
    """Constant-time comparison (the agent uses its own copy of this; it has no controller package)."""
    return hmac.compare_digest(expected.encode(), presented.encode())


@dataclass(frozen=True)
class TokenInfo:
    """The token as translate sees a secret: a scope and a version, never the value."""

    scope: str
    version: str


class AgentTokens(Protocol):
    """Where agent tokens are kept. Keys are "namespace/name"."""

    async def ensure(self, key: str) -> str:
        """The agent's token, made and stored on first use."""
        ...

    async def get(self, key: str) -> str | None:
        """The agent's token, or None when it has none (yet)."""
        ...

    async def forget(self, key: str) -> None: ...


async def auth_headers(tokens: AgentTokens | None, key: str) -> dict[str, str]:
    """Headers for a request to agent `key`'s chat contract (empty when it has no token)."""
    if tokens is None:
        return {}
    token = await tokens.get(key)
    return {"authorization": f"Bearer {token}"} if token else {}


class FileAgentTokens:
    """Tokens as 0600 files in a 0700 directory under the installation's home."""

    def __init__(self, home: Path):
        self.directory = home / "agent-tokens"

    def _path(self, key: str) -> Path:
        namespace, sep, name = key.partition("/")
        if not sep or not namespace or not name or "/" in name or name.startswith("."):
            raise ValueError(f"key must be 'namespace/name', got {key!r}")
        return self.directory / f"{namespace}_{name}"

    def _read(self, key: str) -> str | None:
        try:
            token = self._path(key).read_text().strip()
        except FileNotFoundError:
            return None
        return token or None

    async def get(self, key: str) -> str | None:
        return self._read(key)

    async def ensure(self, key: str) -> str:
        existing = self._read(key)
        if existing:
            return existing
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        path = self._path(key)
        token = new_token()
        # Write aside, then link into place: link fails when the name exists, so two processes racing
        # for the first token agree on the one that landed first.
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(token)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            os.unlink(temp)
        return self._read(key) or token

    async def put(self, key: str, token: str) -> None:
        """Set the agent's token (a rotation; tests hand an agent program a known one)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self._path(key), token.encode(), 0o600)

    async def forget(self, key: str) -> None:
        remove_durably(self._path(key))


class KubeAgentTokens:
    """Tokens kept in each agent's Secret (written by the runtime's apply, read back from there)."""

    def __init__(self, runtime: Any):
        self.runtime = runtime  # controller.runtime.kubernetes.KubernetesRuntime

    async def get(self, key: str) -> str | None:
        value = await self.runtime.read_secret_value(key, TOKEN_NAME)
        return base64.b64decode(value).decode() if value else None

    async def ensure(self, key: str) -> str:
        return await self.get(key) or new_token()

    async def forget(self, key: str) -> None:
        return None  # the Secret goes with the agent (ownerReferences)


def open_agent_tokens(home: Path, runtime: Any) -> AgentTokens:
    if getattr(runtime, "name", "") == "kubernetes":
        return KubeAgentTokens(runtime)
    return FileAgentTokens(home)
