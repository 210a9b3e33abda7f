"""Agent and Team resources: the single source of the schema.

The same models validate `clawpen apply` manifests, REST request bodies (through the gateway's
translation of the seed's flat config) and generate the CRDs' openAPIV3Schema, so a manifest means
the same thing on a laptop and in a cluster. Field names follow Kubernetes conventions (camelCase
in YAML, snake_case in Python); a validation error names the field and the rule that it broke.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

API_GROUP = "clawpen.dev"
API_VERSION = "clawpen.dev/v1alpha1"

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")

MAX_ENV_KEYS = 128
MAX_ENV_VALUE = 4096

# Seed presets: memory in MB and CPU cores.
PRESETS: dict[str, tuple[int, float]] = {
    "nano": (512, 0.5),
    "micro": (1024, 1.0),
    "small": (2048, 2.0),
    "medium": (4096, 4.0),
    "large": (8192, 8.0),
    "xlarge": (16384, 16.0),
}

# Mount targets that would hand a container the host or break its isolation.
FORBIDDEN_TARGETS = (
    "/proc",
    "/sys",
    "/dev",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/etc/shadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/run/secrets",
    "/boot",
)
FORBIDDEN_SOURCES = ("/var/run/docker.sock", "/run/docker.sock", "/proc", "/sys", "/dev", "/etc", "/boot", "/root")
RESERVED_TARGETS = ("/data", "/workspace", "/tmp")


def _dns1123(value: str) -> str:
    if not DNS1123_LABEL.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a "
            "letter or digit, at most 63 characters"
        )
    return value


DnsName = Annotated[str, AfterValidator(_dns1123)]


def _secret_name(value: str) -> str:
    if not SECRET_NAME.match(value) or ".." in value:
        raise ValueError("secret names match [A-Za-z0-9_.-]{1,64} and never contain '..'")
    return value


SecretName = Annotated[str, AfterValidator(_secret_name)]


class Model(BaseModel):
    """Base for every resource model: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    def dump(self) -> dict[str, Any]:
        """The manifest form: camelCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Phase(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUSPENDED = "Suspended"  # paused for lack of chat (spec.idle); the next chat message wakes it


class DesiredState(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"


class ObjectMeta(Model):
    """The part of Kubernetes' ObjectMeta that Claw Pen uses; store-owned fields are read-only."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: DnsName
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # Written by the store, never by users.
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    finalizers: list[str] = Field(default_factory=list)


MIN_CPU = 0.01


class Resources(Model):
    """Either a preset or explicit limits; explicit fields override the preset's."""

    preset: Literal["nano", "micro", "small", "medium", "large", "xlarge"] | None = Field(
        default=None,
        description="a named size (nano 256 MiB/0.25 CPU ... xlarge); memoryMB and cpu override its values",
    )
    memory_mb: int | None = Field(
        default=None, ge=1, le=65536, alias="memoryMB", description="memory limit in MiB (OOM-killed above it)"
    )
    # At least 0.01: below that Docker's NanoCpus rounds to 0 (no limit at all) or it cannot start.
    cpu: float | None = Field(
        default=None, ge=MIN_CPU, le=128, description=f"CPU limit in cores (0.5 = half a core), {MIN_CPU} to 128"
    )

    def effective(self, default_memory_mb: int, default_cpu: float) -> tuple[int, float]:
        memory, cpu = PRESETS[self.preset] if self.preset else (default_memory_mb, default_cpu)
        return (self.memory_mb or memory, self.cpu or cpu)


class SecretRef(Model):
    """A secret the agent receives as /run/secrets/NAME (or, when asEnv, as an env variable)."""

    name: SecretName = Field(description="the secret's name in the secret store (`clawpen secrets set NAME`)")
    as_env: bool = Field(
        default=False, description="also expose it as an environment variable (visible in docker inspect; avoid)"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class VolumeMount(Model):
    """An extra mount: a named volume (plain name) or an absolute host path."""

    source: str = Field(min_length=1, max_length=4096, description="a named volume, or an absolute host path")
    target: str = Field(min_length=1, max_length=4096, description="absolute path inside the container")
    read_only: bool = Field(default=False, description="mount read-only")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        return _check_path("target", value, FORBIDDEN_TARGETS + RESERVED_TARGETS)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value.startswith("/"):
            return _check_path("source", value, FORBIDDEN_SOURCES)
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", value):
            raise ValueError("a named volume matches [A-Za-z0-9][A-Za-z0-9_.-]* (or use an absolute host path)")
        return value


def _check_path(what: str, value: str, forbidden: tuple[str, ...]) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{what} must be an absolute path")
    if "\0" in value:
        raise ValueError(f"{what} must not contain NUL")
    parts = value.split("/")
    if ".." in parts or "." in parts:
        raise ValueError(f"{what} must not contain '..' or '.' segments")
    normal = "/" + "/".join(p for p in parts if p)
    for bad in forbidden:
        if normal == bad or normal.startswith(bad + "/") or normal == "/":
            raise ValueError(f"{what} {normal!r} is not allowed (it would expose {bad or '/'})")
    return normal


RestartPolicy = Literal["no", "on-failure", "always", "unless-stopped"]
Isolation = Literal["default", "gvisor"]

# ---- tools (spec.tools; rendered for the agent by controller/tools_config.py) ----------------------
BuiltinTool = Literal["read_file", "write_file", "list_files", "run_command"]
ApprovalPolicy = Literal["never", "always"]
MCP_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


# A header or variable with one of these names carries a credential: spelled out in the spec it would
# reach the container's environment and `docker inspect`, so it must come from a secret file instead.
CREDENTIAL_HEADER = re.compile(r"^(proxy-)?authorization$|^cookie$|key|token|secret|passw|credential", re.IGNORECASE)
CREDENTIAL_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|PRIVATE", re.IGNORECASE)
# The literal field → (its credential pattern, the field to use instead, the shape of a value there).
_CREDENTIAL_FIELDS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "headers": (CREDENTIAL_HEADER, "secretHeaders", "{secret: NAME}"),
    "env": (CREDENTIAL_ENV, "secretEnv", "NAME"),
}


class SecretValue(Model):
    """A value the agent reads from /run/secrets/<secret> when it connects; never in the spec or env."""

    secret: SecretName = Field(description="the secret's name (`clawpen secrets set NAME`), mounted as a file")
    prefix: str = Field(default="", max_length=64, description='put before the value, e.g. "Bearer "')

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"secret": value} if isinstance(value, str) else value


class MCPServerSpec(Model):
    """An MCP server: `url` for streamable HTTP, or `command` (+ args, env) for stdio in the container.

    Credentials go in secretHeaders / secretEnv, which name secrets; literal headers and env values
    that look like credentials are refused (they would be visible in `docker inspect`).
    """

    name: str = Field(description="tools are offered to the model as <name>__<tool>; [A-Za-z0-9_-]{1,32}")
    url: str | None = Field(default=None, max_length=2048, description="streamable-HTTP endpoint")
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers (url servers), no credentials"
    )
    secret_headers: dict[str, SecretValue] = Field(
        default_factory=dict,
        description="headers read from secret files: {Authorization: {secret: NAME, prefix: 'Bearer '}} or {H: NAME}",
    )
    command: str | None = Field(default=None, max_length=1024, description="program run inside the container")
    args: list[str] = Field(default_factory=list, max_length=64)
    env: dict[str, str] = Field(default_factory=dict, description="environment of the stdio server, no credentials")
    secret_env: dict[str, SecretValue] = Field(
        default_factory=dict, description="variables of the stdio server read from secret files: {VAR: NAME}"
    )

    @field_validator("headers", "env")
    @classmethod
    def _no_literal_credentials(cls, values: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        pattern, secret_field, secret_value = _CREDENTIAL_FIELDS[str(info.field_name)]
        for name in values:
            if pattern.search(name):
                raise ValueError(
                    f"{name}: a credential written in the spec reaches the container's environment and "
                    f"`docker inspect`; use {secret_field}: {{{name}: {secret_value}}} (set the value with "
                    "`clawpen secrets set NAME`)"
                )
        return values

    def secret_names(self) -> list[str]:
        """The secrets this server reads (each must be mounted as a file)."""
        return sorted({v.secret for v in (*self.secret_headers.values(), *self.secret_env.values())})

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not MCP_SERVER_NAME.match(value):
            raise ValueError("must match [A-Za-z0-9_-]{1,32}")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerSpec:
        if bool(self.url) == bool(self.command):
            raise ValueError("give either url (streamable HTTP) or command (stdio), not both or neither")
        if self.secret_headers and not self.url:
            raise ValueError("secretHeaders: only url servers send headers")
        if self.secret_env and not self.command:
            raise ValueError("secretEnv: only command (stdio) servers have an environment")
        both = sorted({h.lower() for h in self.headers} & {h.lower() for h in self.secret_headers}) + sorted(
            set(self.env) & set(self.secret_env)
        )
        if both:
            raise ValueError(f"{both[0]}: given both as a literal and from a secret")
        return self


class Approval(RootModel[ApprovalPolicy | dict[str, ApprovalPolicy]]):
    """never | always | {tool: policy} ('*' sets the default for tools not named)."""

    root: ApprovalPolicy | dict[str, ApprovalPolicy] = "never"


class ToolsSpec(Model):
    """Which tools the agent may use, and when a person must approve a call."""

    builtin: list[BuiltinTool] | None = Field(
        default=None, description="built-in workspace tools; unset: the template's default (see templates/agents.yaml)"
    )
    approval: Approval = Field(
        default_factory=Approval, description="never | always | {tool: policy} ('*' sets the default)"
    )
    max_steps: int = Field(default=8, ge=1, le=100, description="tool rounds per turn before the agent stops")
    turn_timeout_seconds: float = Field(default=300, gt=0, le=3600, description="time budget of one turn")
    approval_timeout_seconds: float = Field(default=120, gt=0, le=3600, description="no answer in time = deny")
    command_timeout_seconds: float = Field(default=30, gt=0, le=3600, description="run_command's default timeout")
    mcp_servers: list[MCPServerSpec] = Field(default_factory=list, alias="mcpServers", max_length=32)

    @field_validator("mcp_servers")
    @classmethod
    def _unique(cls, servers: list[MCPServerSpec]) -> list[MCPServerSpec]:
        names = [s.name for s in servers]
        if len(names) != len(set(names)):
            raise ValueError("server names must be unique")
        return servers

    def secret_names(self) -> list[str]:
        """Every secret the MCP servers read from /run/secrets (translate mounts them as files)."""
        return sorted({name for server in self.mcp_servers for name in server.secret_names()})



class IdleSpec(Model):
    """Suspend an agent nobody talks to; the next chat message through the gateway wakes it."""

    suspend_after: str = Field(
        max_length=32,
        description="suspend (docker pause) after this long without chat traffic: a duration like 15m, 1h30m, 45s",
    )

    @field_validator("suspend_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        from controller.idle import parse_duration

        parse_duration(value)
        return value


class AgentSpec(Model):
    """The agent's desired configuration; the controller makes it true. Unset fields come from the template."""

    template: str | None = Field(
        default=None, max_length=128, description="key in templates/agents.yaml; its config are the defaults"
    )
    provider: str | None = Field(
        default=None, max_length=64, description="key in templates/providers.yaml (default: the template's)"
    )
    model: str | None = Field(
        default=None,
        max_length=256,
        description="model id (default: the template's, or the provider's default_model when provider is set here)",
    )
    base_url: str | None = Field(
        default=None, alias="baseURL", max_length=2048, description="the provider's API URL, instead of the catalog's"
    )
    resources: Resources | None = Field(default=None, description="memory and CPU limits (default: the template's)")
    env: dict[str, str] = Field(
        default_factory=dict, description="environment variables for the agent (CLAWPEN_* is reserved)"
    )
    secrets: list[SecretRef] = Field(
        default_factory=list, description="secrets mounted read-only at /run/secrets/NAME (names or {name, asEnv})"
    )
    volumes: list[VolumeMount] = Field(
        default_factory=list, description="extra mounts besides /data and /workspace (kept across replacements)"
    )
    restart_policy: RestartPolicy = Field(
        default="unless-stopped", description="the container's restart policy (Docker's names)"
    )
    state: DesiredState = Field(
        default=DesiredState.RUNNING, description="desired state: Running or Stopped (clawpen start/stop set it)"
    )
    image: str | None = Field(
        default=None, max_length=512, description="the container image (default: CLAWPEN_IMAGE, the agent image)"
    )
    project: str | None = Field(default=None, max_length=128, description="a grouping name (API ?project= filter)")
    tags: list[str] = Field(default_factory=list, max_length=64, description="free-form tags (API ?tag= filter)")
    system_prompt: str | None = Field(
        default=None, max_length=65536, description="the agent's system prompt (default: the template's)"
    )
    # -- isolation (issue 10) --
    isolation: Isolation | None = Field(
        default=None,
        description="kernel isolation: default (the engine's runc) or gvisor (runsc on Docker, a RuntimeClass "
        "on Kubernetes); unset: the installation's CLAWPEN_ISOLATION",
    )
    tools: ToolsSpec | None = Field(default=None, description="tool calling: built-ins, MCP servers, approval")
    # -- agent programs (controller.programs) --
    program: Literal["clawpen", "openclaw"] | None = Field(
        default=None,
        description="what runs in the container: clawpen (our small agent, the default) or openclaw "
        "(an OpenClaw gateway); unset: the template's choice, else clawpen",
    )
    idle: IdleSpec | None = Field(
        default=None, description="suspend after a quiet period (spec.idle.suspendAfter); chat wakes it"
    )

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        if len(env) > MAX_ENV_KEYS:
            raise ValueError(f"at most {MAX_ENV_KEYS} variables")
        for key, value in env.items():
            if not ENV_KEY.match(key):
                raise ValueError(f"variable name {key!r} must match {ENV_KEY.pattern}")
            if len(value) > MAX_ENV_VALUE:
                raise ValueError(f"value of {key} is longer than {MAX_ENV_VALUE} characters")
            if "\0" in value:
                raise ValueError(f"value of {key} contains NUL")
        return env

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value) and "${" not in value:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("secrets")
    @classmethod
    def _unique_secrets(cls, refs: list[SecretRef]) -> list[SecretRef]:
        names = [r.name for r in refs]
        if len(names) != len(set(names)):
            raise ValueError("secret names must be unique")
        return refs

    @field_validator("volumes")
    @classmethod
    def _unique_targets(cls, vols: list[VolumeMount]) -> list[VolumeMount]:
        targets = [v.target for v in vols]
        if len(targets) != len(set(targets)):
            raise ValueError("volume targets must be unique")
        return vols

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not 1 <= len(tag) <= 64:
                raise ValueError("each tag is 1-64 characters")
        return tags


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None


class AgentStatus(Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    phase: Phase = Phase.PENDING
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    endpoint: str | None = None
    started_at: datetime | None = None
    restart_count: int = 0
    plan_hash: str | None = None
    container_id: str | None = None
    message: str | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class Resource(Model):
    """Fields common to every kind."""

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""

    api_version: Literal["clawpen.dev/v1alpha1"] = "clawpen.dev/v1alpha1"
    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


class Agent(Resource):
    KIND: ClassVar[str] = "Agent"
    PLURAL: ClassVar[str] = "agents"

    kind: Literal["Agent"] = "Agent"
    spec: AgentSpec = Field(default_factory=AgentSpec)
    status: AgentStatus | None = None


# ---- Teams ---------------------------------------------------------------------------------------


class TeamRouter(Model):
    # The seed names its router ("finance-router"); kept so a TOML file round-trips unchanged.
    name: str | None = Field(default=None, max_length=256)
    mode: Literal["keyword", "semantic", "llm", "hybrid"] = Field(
        default="keyword",
        description="keyword: listed words only; semantic: on-machine embedding similarity, no model call; "
        "llm: ask the router model; hybrid: keywords when decisive, else semantic, else the model if one "
        "is configured",
    )
    confidence_threshold: float = Field(default=0.7, ge=0, le=1)
    clarify_on_low_confidence: bool = True
    provider: str | None = None
    model: str | None = None
    base_url: str | None = Field(default=None, alias="baseURL")
    # route (issue 17): semantic routing
    similarity_floor: float = Field(
        default=0.35, ge=-1, le=1,
        description="semantic routing: below this best similarity nothing in the team resembles the message "
        "(fallback intent or a clarifying question)",
    )
    learn: bool = Field(
        default=False,
        description="add a message to the picked intent's learned examples when a user answers a "
        "clarification (stored beside the team's status, never in the team file)",
    )


class TeamIntent(Model):
    agent: DnsName
    description: str = ""


class TeamRouting(Model):
    keywords: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)


class TeamClarification(Model):
    prompts: list[str] = Field(default_factory=list)
    options_format: str = "- {intent}: {description}"


class TeamResponses(Model):
    routing_ack: str = "Routing to {agent_name}..."
    clarification_needed: str = "I'm not sure who should handle that. Could you clarify?"
    agent_response_prefix: str = ""


class TeamSpec(Model):
    display_name: str | None = Field(default=None, max_length=256)
    description: str = ""
    version: str | None = None
    router: TeamRouter = Field(default_factory=TeamRouter)
    agents: dict[str, TeamIntent] = Field(default_factory=dict)
    routing: dict[str, TeamRouting] = Field(default_factory=dict)
    clarification: TeamClarification = Field(default_factory=TeamClarification)
    responses: TeamResponses = Field(default_factory=TeamResponses)
    fallback_intent: str | None = None

    @model_validator(mode="after")
    def _intents_known(self) -> TeamSpec:
        for intent in self.routing:
            if intent not in self.agents:
                raise ValueError(f"routing.{intent} names an intent missing from agents")
        if self.fallback_intent and self.fallback_intent not in self.agents:
            raise ValueError(f"fallbackIntent {self.fallback_intent!r} is not one of agents")
        return self


class TeamStatus(Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    phase: Literal["Pending", "Ready", "Degraded", "Failed"] = "Pending"
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    missing_agents: list[str] = Field(default_factory=list)
    not_running_agents: list[str] = Field(default_factory=list)


class Team(Resource):
    KIND: ClassVar[str] = "Team"
    PLURAL: ClassVar[str] = "teams"

    kind: Literal["Team"] = "Team"
    spec: TeamSpec = Field(default_factory=TeamSpec)
    status: TeamStatus | None = None


KINDS: dict[str, type[Resource]] = {"Agent": Agent, "Team": Team}
PLURALS: dict[str, type[Resource]] = {"agents": Agent, "teams": Team}


class ManifestError(ValueError):
    """A manifest that does not validate; the message names each field and rule."""


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("function-after[_dns1123(), str]",))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{prefix}{loc}: {msg}" if loc else f"{prefix}{msg}")
    return "; ".join(parts)


def parse_resource(doc: Any) -> Resource:
    """Validate one manifest document into its kind's model, or raise ManifestError."""
    if not isinstance(doc, dict):
        raise ManifestError("a manifest must be a mapping with apiVersion, kind, metadata and spec")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ManifestError(f"kind: must be one of {', '.join(KINDS)} (got {kind!r})")
    if doc.get("apiVersion") != API_VERSION:
        raise ManifestError(f"apiVersion: must be {API_VERSION} (got {doc.get('apiVersion')!r})")
    name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc.get("metadata"), dict) else "?"
    try:
        return KINDS[kind].model_validate(doc)
    except ValidationError as err:
        raise ManifestError(f"{kind} {name}: {format_validation_error(err)}") from None


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
