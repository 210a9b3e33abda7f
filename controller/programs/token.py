"""Seam for the per-agent token (owner: helper iso, `controller/agent_token.py`, not on main yet).

The contract: one random bearer token per agent, kept like a secret, delivered as the file
/run/secrets/clawpen-agent-token. OpenClaw uses it as its gateway token; our gateway sends it as
`Authorization: Bearer`. Until iso's helper lands, the token is an agent-scoped secret in our own
secret store named like the file, created on first need. When it lands, these two functions call it.
"""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

AGENT_TOKEN_FILE = "clawpen-agent-token"


def ensure_agent_token(store: Any, agent: str) -> None:
    """Create the agent's token in the secret store when it has none (store: controller.secrets.SecretStore)."""
    try:
        store.get(AGENT_TOKEN_FILE, agent=agent)
    except Exception:  # noqa: BLE001 - missing or unreadable: make a fresh one
        store.set(AGENT_TOKEN_FILE, pysecrets.token_urlsafe(32).encode(), agent=agent)


def read_agent_token(store: Any, agent: str) -> str | None:
    """The agent's token for an Authorization header, or None when it has none."""
    try:
        return bytes(store.get(AGENT_TOKEN_FILE, agent=agent)).decode().strip() or None
    except Exception:  # noqa: BLE001 - no token: the agent does not need one
        return None


def bearer_headers(settings: Any, agent: str) -> dict[str, str]:
    """`Authorization: Bearer` for a call to the agent's chat port, when it has a token."""
    from controller.secrets import SecretStore

    try:
        token = read_agent_token(SecretStore.from_settings(settings), agent)
    except Exception:  # noqa: BLE001 - no secret store: no token
        token = None
    return {"Authorization": f"Bearer {token}"} if token else {}
