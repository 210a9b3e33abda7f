"""The `clawpen` program: our own small agent (`agent/`), the default. Its render is what translate()
always produced (the translate golden files pin it): CLAWPEN_* variables, secrets as files."""

from __future__ import annotations

from controller.plan import AGENT_PORT
from controller.programs.base import ChatRequest, Rendered, RenderInput


class ClawpenProgram:
    name = "clawpen"
    port = AGENT_PORT
    readiness_path = "/healthz"
    start_timeout_s = 60
    starting_message = "waiting for the agent's /healthz"
    needs_token = False
    default_memory_mb: int | None = None  # the catalog's default
    default_cpu: float | None = None
    required_secret_files: tuple[str, ...] = ()

    def image(self, default_image: str) -> str:
        return default_image

    def render(self, given: RenderInput) -> Rendered:
        agent, provider = given.agent, given.provider
        return Rendered(
            env={
                "CLAWPEN_AGENT_NAME": agent.metadata.name,
                "CLAWPEN_AGENT_NAMESPACE": agent.metadata.namespace,
                "CLAWPEN_AGENT_PROJECT": agent.spec.project or "",
                "CLAWPEN_PROVIDER": given.provider_key,
                "CLAWPEN_PROVIDER_NAME": provider.name,
                "CLAWPEN_API_STYLE": provider.api_style,
                "CLAWPEN_BASE_URL": given.base_url,
                "CLAWPEN_MODEL": given.model,
                "CLAWPEN_API_KEY_NAME": provider.env_key or "",
                "CLAWPEN_API_KEY_OPTIONAL": "1" if provider.key_optional else "",
                "CLAWPEN_SYSTEM_PROMPT": given.system_prompt,
                "CLAWPEN_DATA_DIR": "/data",
            }
        )

    def chat_request(self, content: str, session: str, model: str | None) -> ChatRequest:
        body = {"model": model or "default", "messages": [{"role": "user", "content": content}], "stream": True}
        body["session"] = session  # the agent keeps the history per session in /data
        return ChatRequest("/v1/chat/completions", body)
