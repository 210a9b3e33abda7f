"""Request and response bodies of the REST API: one pydantic model per body.

These models validate requests, shape responses and produce /openapi.json, so the published schema
cannot drift from what the server does. Field names follow the seed's (snake_case, flat `config`),
which the original Claw Pen clients speak; api.convert maps them onto the Agent resource, whose
model stays the single source of the rules (limits, name format, forbidden mounts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.resources import DNS1123_LABEL, Isolation


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is a 422 naming it rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(Out):
    error: str = Field(description="what went wrong, one line")
    detail: Any = Field(default=None, description="field errors or context; never a stack trace")


# ---- auth ---------------------------------------------------------------------------------------


class LoginRequest(Body):
    username: str | None = Field(default=None, max_length=64, description="omitted: the built-in admin")
    password: str = Field(max_length=1024)


class RegisterRequest(Body):
    password: str = Field(min_length=12, max_length=1024)


class RefreshRequest(Body):
    refresh_token: str = Field(max_length=4096)


class TokenOut(Out):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds the access token lives")


class AuthStatusOut(Out):
    auth_enabled: bool
    has_admin: bool
    registration_enabled: bool
    sso_enabled: bool = Field(default=False, description="GET /auth/oidc/login starts single sign-on")


# ---- agents -------------------------------------------------------------------------------------

Preset = Literal["nano", "micro", "small", "medium", "large", "xlarge"]
RestartPolicy = Literal["no", "on-failure", "always", "unless-stopped"]
StatusName = Literal["pending", "starting", "running", "stopped", "failed", "suspended"]
DesiredState = Literal["running", "stopped"]


class VolumeIn(Body):
    source: str = Field(description="a named volume or an absolute host path")
    target: str = Field(description="absolute path in the container")
    read_only: bool = False


class SecretIn(Body):
    name: str
    as_env: bool = Field(default=False, description="also expose it as an environment variable")


class AgentConfig(Body):
    """The seed's flat agent config. Every field is optional: the template fills what is left out."""

    llm_provider: str | None = Field(default=None, description="key in templates/providers.yaml")
    llm_model: str | None = None
    base_url: str | None = Field(default=None, description="overrides the provider's endpoint")
    memory_mb: int | None = Field(default=None, json_schema_extra={"minimum": 1, "maximum": 65536})
    cpu_cores: float | None = Field(default=None, ge=0.01, le=128, description="CPU cores, 0.01 to 128")
    preset: Preset | None = None
    env_vars: dict[str, str | None] | None = Field(
        default=None, description="on update, merged into the existing ones; a null value removes a variable"
    )
    secrets: list[str | SecretIn] | None = Field(default=None, description="names in the secret store")
    restart_policy: RestartPolicy | None = None
    volumes: list[VolumeIn | str] | None = Field(
        default=None, description='{"source","target","read_only"} or "source:target[:ro]"'
    )
    system_prompt: str | None = None
    isolation: Isolation | None = Field(
        default=None, description="default (runc) or gvisor (runsc); unset: the installation's default"
    )
    program: Literal["clawpen", "openclaw"] | None = Field(
        default=None, description="what runs in the container: clawpen (default) or openclaw"
    )
    # Not in the seed's config: shaped as in a manifest (camelCase). On update, omitted = kept, null = removed.
    tools: dict[str, Any] | None = Field(
        default=None, description="spec.tools as in a manifest: builtin, approval, maxSteps, mcpServers, ..."
    )
    idle: dict[str, Any] | None = Field(default=None, description='spec.idle as in a manifest: {"suspendAfter": "15m"}')


class AgentCreate(Body):
    # The rule itself is checked by the Agent model (with a message that explains it); the schema shows it.
    name: str = Field(
        description="DNS-1123 label; also the agent's id",
        json_schema_extra={"pattern": DNS1123_LABEL.pattern, "maxLength": 63},
    )
    template: str | None = Field(default=None, description="key in templates/agents.yaml")
    config: AgentConfig | None = None
    project: str | None = None
    tags: list[str] | None = None
    state: DesiredState = Field(default="running", description="desired state right after creation")
    from_snapshot: str | None = Field(
        default=None,
        description="AGENT/SNAPSHOT_ID: start with that snapshot's /data and /workspace (a clone)",
        max_length=160,
    )


class AgentUpdate(Body):
    """PUT: `config` replaces the agent's config except `env_vars`, which merge; omitted top-level
    fields keep their values. `resource_version`, when given, must match (else 409)."""

    template: str | None = None
    config: AgentConfig | None = None
    project: str | None = None
    tags: list[str] | None = None
    resource_version: str | None = None


class AgentConfigOut(Out):
    llm_provider: str | None = None
    llm_model: str | None = None
    base_url: str | None = None
    memory_mb: int | None = None
    cpu_cores: float | None = None
    preset: Preset | None = None
    env_vars: dict[str, str] = Field(default_factory=dict, description="secret-looking values are masked")
    secrets: list[str] = Field(default_factory=list, description="names only, never values")
    restart_policy: RestartPolicy = "unless-stopped"
    volumes: list[VolumeIn] = Field(default_factory=list)
    system_prompt: str | None = None
    isolation: Isolation | None = None
    program: str | None = None
    tools: dict[str, Any] | None = Field(default=None, description="spec.tools (MCP credentials only by secret name)")
    idle: dict[str, Any] | None = None


class ConditionOut(Out):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None


class AgentOut(Out):
    id: str = Field(description="the agent's name")
    name: str
    status: StatusName = Field(description="observed by the controller")
    desired_state: DesiredState
    template: str | None = None
    config: AgentConfigOut
    project: str | None = None
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict, description="metadata.labels (a manifest's, or kubectl's)")
    created_at: datetime | None = None
    conditions: list[ConditionOut] = Field(default_factory=list)
    message: str | None = None
    endpoint: str | None = None
    restart_count: int = 0
    resource_version: str | None = None
    generation: int | None = None
    observed_generation: int | None = None


class ActionOut(Out):
    id: str
    status: StatusName
    desired_state: DesiredState
    message: str = "accepted; the controller applies it"


class BulkActionOut(Out):
    desired_state: DesiredState
    project: str | None = None
    agents: list[str]
    count: int


class LogLineOut(Out):
    timestamp: datetime | None = None
    level: str
    message: str
    stream: Literal["stdout", "stderr"] = "stdout"


class AgentMetricsOut(Out):
    id: str
    memory_mb: float
    memory_limit_mb: float
    cpu_percent: float
    network_rx_bytes: int
    network_tx_bytes: int
    pids: int = 0


class AgentHealthOut(Out):
    id: str
    status: StatusName
    running: bool = Field(description="the runtime reports the workload running")
    healthy: bool | None = Field(description="the agent's /healthz answered 200; null when not checked")
    endpoint: str | None = None
    detail: str | None = None


# ---- system -------------------------------------------------------------------------------------


class HealthOut(Out):
    status: Literal["ok"] = "ok"
    version: str


class RuntimeStatusOut(Out):
    runtime: str
    version: str | None = None
    available: bool
    error: str | None = None
    store: str
    instance: str
    agents_total: int
    agents_running: int


class GlobalMetricsOut(Out):
    agents_total: int
    agents_running: int
    memory_mb_total: float
    cpu_percent_total: float
    agents: list[AgentMetricsOut]


class EventOut(Out):
    """One entry of the controller's per-agent history (what `clawpen describe` shows)."""

    time: str
    type: str = Field(description="Normal or Warning")
    reason: str
    message: str


class CatalogEntryOut(BaseModel):
    """A template or provider as the catalog defines it, plus its key as `id`."""

    model_config = ConfigDict(extra="allow")

    id: str


class WarmPoolOut(BaseModel):
    """A template's warm pool as the controller last reported it (controller.warm_pool.status)."""

    size: int = Field(description="containers the pool keeps (warmPool; templates that plan the same container share)")
    ready: int = Field(description="started and answering: a new agent of the template claims one")
    starting: int = Field(description="started, not answering yet (the pool is refilling)")
    enabled: bool = Field(description="whether a controller keeps this pool")
    reason: str | None = Field(default=None, description="why it is off (or, when on, why it does not fill)")


class TemplateOut(CatalogEntryOut):
    """A template of templates/agents.yaml, plus its key as `id` and, when it sets warmPool, its pool."""

    warm_pool: WarmPoolOut | None = Field(default=None, description="only for templates that set warmPool")


# ---- websocket frames (documented in the README; not part of OpenAPI, which cannot express them) ---


class ChatIn(Body):
    content: str = Field(min_length=1, max_length=200_000)
    session: str = Field(default="main", pattern=r"^[A-Za-z0-9_.-]{1,128}$")
