"""The agent-program interface: what translate(), the reconciler and the chat relay ask of a program.

Claw Pen runs more than its own small agent (`agent/`): any program that can serve a chat over HTTP
inside our hardened container can be an agent. What differs between programs is kept here, behind
one small interface, so the reconciler, the relay and teams never branch on a program's name:

- the image it runs (and how that image is built and cached: `controller.programs.images`),
- `render()`: the spec, already resolved by translate (provider, model, base URL, secrets), turned
  into the env and files the program reads — pure, golden-file tested,
- the chat request it speaks (path, body shape, auth header) and its readiness path,
- how long a start may take and its default resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from controller.catalog import Provider
from controller.plan import PlanFile
from controller.resources import Agent


class RenderError(Exception):
    """A spec the program cannot run; reason becomes the Ready condition's reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class RenderInput:
    """What translate() resolved for every program: nothing here is looked up again by a program."""

    agent: Agent
    provider_key: str
    provider: Provider
    model: str
    base_url: str
    system_prompt: str
    secret_files: tuple[str, ...]  # names mounted at /run/secrets (not as env)


@dataclass(frozen=True)
class Rendered:
    env: dict[str, str]
    files: tuple[PlanFile, ...] = ()


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn as the program wants it: path, JSON body and extra headers (never a secret:
    the bearer token is added by the caller with controller.agent_token.auth_headers)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class AgentProgram(Protocol):
    name: str
    port: int  # the chat port inside the container
    readiness_path: str
    start_timeout_s: int
    starting_message: str  # what the status says while the program boots
    needs_token: bool  # wants the per-agent token (its gateway auth) at /run/secrets
    default_memory_mb: int | None
    default_cpu: float | None
    required_secret_files: tuple[str, ...]

    def image(self, default_image: str) -> str: ...

    def render(self, given: RenderInput) -> Rendered: ...

    def chat_request(self, content: str, session: str, model: str | None) -> ChatRequest: ...


class WarmPoolProgram(Protocol):
    """A program that accepts its configuration after it started (controller.warm_pool): a pool of
    started, unconfigured containers can then serve new agents at once."""

    claim_check_path: str  # answers 200 to the agent's token once the claimed config is live

    def pool_files(self, placeholder_token: str) -> dict[str, bytes]: ...

    def claim_files(self, files: dict[str, bytes], token_name: str) -> dict[str, bytes]: ...


def warm_pool_program(program: AgentProgram) -> WarmPoolProgram | None:
    """The program as a WarmPoolProgram, or None when it must be configured before it starts."""
    return cast(WarmPoolProgram, program) if getattr(program, "warm_pool", False) else None


def sorted_env(env: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(env.items()))
