"""translate(): Agent spec + catalog + resolved secrets → WorkloadPlan. Pure: no I/O, no clock.

Everything that can be wrong with a spec is found here, before any container is touched, and
raised as a TranslateError whose reason becomes the agent's Ready condition (InvalidSpec,
UnknownTemplate, UnknownProvider, MissingVariable, SecretMissing). Precedence, lowest first:
provider defaults < template < spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from controller.agent_token import TOKEN_NAME
from controller.catalog import Catalog, Provider
from controller.interpolate import InterpolationError, VarPolicy, interpolate, interpolate_map
from controller.plan import LABEL_PREFIX, Mount, SecretMount, WorkloadPlan
from controller.programs import AgentProgram, RenderError, RenderInput, program_named
from controller.resources import Agent, DesiredState
from controller.tools_config import render_tools
from controller.volume_policy import VolumeNotAllowed, VolumePolicy


class TranslateError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class ResolvedSecret(Protocol):
    """What translate needs of a secret: where it came from and its version, never its value."""

    @property
    def scope(self) -> str: ...

    @property
    def version(self) -> str: ...


def volume_targets() -> tuple[str, str]:
    return ("/data", "/workspace")


def translate(
    agent: Agent,
    catalog: Catalog,
    secrets: Mapping[str, ResolvedSecret],
    *,
    instance: str,
    image: str,
    environ: Mapping[str, str],
    agent_token: ResolvedSecret | None = None,
    variables: VarPolicy | None = None,
    volumes: VolumePolicy | None = None,
    isolation: str = "default",
) -> WorkloadPlan:
    """`variables` and `volumes` are the operator's policies; absent, the strictest (nothing opened)."""
    spec = agent.spec
    vars_policy = variables or VarPolicy()
    try:
        (volumes or VolumePolicy()).check(spec.volumes)
    except VolumeNotAllowed as err:
        raise TranslateError("VolumeNotAllowed", str(err)) from None
    template = None
    if spec.template:
        template = catalog.templates.get(spec.template)
        if template is None:
            known = ", ".join(sorted(catalog.templates)) or "none"
            raise TranslateError("UnknownTemplate", f"spec.template: no template {spec.template!r} (known: {known})")
    tconf = template.config if template else None

    provider_key, model = effective_provider_model(agent, catalog)
    provider = catalog.providers.get(provider_key)
    if provider is None:
        known = ", ".join(sorted(catalog.providers))
        raise TranslateError("UnknownProvider", f"spec.provider: no provider {provider_key!r} (known: {known})")

    try:
        if not model:
            raise TranslateError("InvalidSpec", f"spec.model: required for provider {provider_key!r} (no default)")
        model = interpolate(model, environ, "spec.model", vars_policy)
        base_url = _base_url(spec.base_url, provider, provider_key, environ, vars_policy)
        env = interpolate_map(template.env, environ, f"template {spec.template}.env", vars_policy) if template else {}
        env.update(interpolate_map(spec.env, environ, "spec.env", vars_policy))
    except InterpolationError as err:
        raise TranslateError("MissingVariable", str(err)) from None
    except ValueError as err:
        raise TranslateError("InvalidSpec", str(err)) from None

    program = program_for(agent, catalog)
    default_memory = _template_memory(tconf, catalog, program)
    default_cpu = _template_cpu(tconf, catalog, program)
    if spec.resources is not None:
        memory_mb, cpu = spec.resources.effective(default_memory, default_cpu)
    else:
        memory_mb, cpu = default_memory, default_cpu

    tool_secrets = spec.tools.secret_names() if spec.tools else []
    as_env = sorted(ref.name for ref in spec.secrets if ref.as_env and ref.name in tool_secrets)
    if as_env:
        raise TranslateError(
            "InvalidSpec",
            f"spec.secrets: {as_env[0]} is asEnv, but spec.tools reads it from /run/secrets/{as_env[0]}: drop asEnv",
        )
    secret_mounts = _secret_mounts(
        agent,
        [*(template.secrets if template else []), *program.required_secret_files, *tool_secrets],
        provider,
        secrets,
    )
    if any(m.name == TOKEN_NAME for m in secret_mounts):
        raise TranslateError("InvalidSpec", f"spec.secrets: the name {TOKEN_NAME!r} is reserved for the agent's token")
    if agent_token is not None:
        token_mount = SecretMount(name=TOKEN_NAME, scope=agent_token.scope, version=agent_token.version)
        secret_mounts = (*secret_mounts, token_mount)
    if program.needs_token and agent_token is None:
        raise TranslateError(
            "TokenMissing", f"the {program.name} program needs the agent's token (made by the controller)"
        )
    reserved = sorted(k for k in env if k.startswith("CLAWPEN_"))
    if reserved:
        raise TranslateError("InvalidSpec", f"spec.env.{reserved[0]}: the CLAWPEN_ prefix is reserved")

    system_prompt = spec.system_prompt or (tconf.system_prompt if tconf else None) or ""
    given = RenderInput(
        agent=agent,
        provider_key=provider_key,
        provider=provider,
        model=model,
        base_url=base_url,
        system_prompt=system_prompt,
        secret_files=tuple(m.name for m in secret_mounts if not m.as_env),
    )
    env.update(render_tools(spec.tools, template.tools.builtin if template else None))
    try:
        rendered = program.render(given)
    except RenderError as err:
        raise TranslateError(err.reason, err.message) from None
    env.update(rendered.env)

    mounts = tuple(Mount(v.source, v.target, v.read_only) for v in spec.volumes)
    labels = {k: v for k, v in agent.metadata.labels.items() if not k.startswith(LABEL_PREFIX)}
    return WorkloadPlan(
        namespace=agent.metadata.namespace,
        name=agent.metadata.name,
        instance=instance,
        image=spec.image or program.image(image),
        env=dict(sorted(env.items())),
        memory_mb=memory_mb,
        cpu=cpu,
        restart_policy=spec.restart_policy,
        mounts=mounts,
        secrets=secret_mounts,
        labels=labels,
        isolation=spec.isolation or isolation,
        running=spec.state == DesiredState.RUNNING,
        program=program.name,
        files=rendered.files,
        port=program.port,
        readiness_path=program.readiness_path,
        start_timeout_s=program.start_timeout_s,
    )


def _base_url(
    override: str | None, provider: Provider, key: str, environ: Mapping[str, str], policy: VarPolicy
) -> str:
    if override:
        return interpolate(override, environ, "spec.baseURL", policy)
    if not provider.base_url:
        raise TranslateError("InvalidSpec", f"spec.baseURL: required for provider {key!r} (it has no default)")
    try:
        # The catalog is the operator's own file: plain names like OPENAI_BASE_URL are fine there.
        catalog_policy = VarPolicy(names=policy.names, plain=True)
        return interpolate(provider.base_url, environ, f"providers.{key}.base_url", catalog_policy)
    except InterpolationError as err:
        raise TranslateError(
            "MissingVariable", f"{err} (set it in the controller's environment, or set spec.baseURL)"
        ) from None


def _template_memory(tconf: object, catalog: Catalog, program: AgentProgram) -> int:
    return getattr(tconf, "memory_mb", None) or program.default_memory_mb or catalog.default_memory_mb


def _template_cpu(tconf: object, catalog: Catalog, program: AgentProgram) -> float:
    return getattr(tconf, "cpu_cores", None) or program.default_cpu or catalog.default_cpu


class _Templates(Protocol):
    @property
    def templates(self) -> Mapping[str, Any]: ...


def program_for(agent: Agent, catalog: _Templates) -> AgentProgram:
    """The agent's program: spec.program, else its template's, else clawpen."""
    template = catalog.templates.get(agent.spec.template or "")
    config = getattr(template, "config", None)
    return program_named(agent.spec.program or getattr(config, "program", None))


def _secret_mounts(
    agent: Agent, template_secrets: list[str], provider: Provider, resolved: Mapping[str, ResolvedSecret]
) -> tuple[SecretMount, ...]:
    wanted: dict[str, bool] = {name: False for name in template_secrets}
    for ref in agent.spec.secrets:
        wanted[ref.name] = ref.as_env
    missing = [name for name in wanted if name not in resolved]
    if missing:
        raise TranslateError(
            "SecretMissing",
            f"spec.secrets: {', '.join(missing)} not found for agent {agent.metadata.name} or globally "
            f"(set with `clawpen secrets set NAME [--agent {agent.metadata.name}]`)",
        )
    # The provider's key is mounted when the store has it, even if not listed: it is what the agent
    # needs to work, and listing it again in every manifest is noise. Absent and required, the agent
    # could never become ready: say so now (Failed, SecretMissing) rather than "Starting" forever;
    # setting the secret re-reconciles the agent (the secret watcher knows it wants this name).
    if provider.env_key and provider.env_key not in wanted:
        if provider.env_key in resolved:
            wanted[provider.env_key] = False
        elif not provider.key_optional:
            raise TranslateError(
                "SecretMissing",
                f"provider {provider.name} needs the secret {provider.env_key}, which is not set "
                f"(`clawpen secrets set {provider.env_key}`; the value is read from stdin or a prompt)",
            )
    return tuple(
        SecretMount(name=name, scope=resolved[name].scope, version=resolved[name].version, as_env=as_env)
        for name, as_env in sorted(wanted.items())
    )


def effective_provider_model(agent: Agent, catalog: Catalog) -> tuple[str, str | None]:
    """Provider key and model after template and provider defaults (for display; no interpolation)."""
    template = catalog.templates.get(agent.spec.template or "")
    tconf = template.config if template else None
    provider_key = agent.spec.provider or (tconf.llm_provider if tconf else None) or catalog.default_provider
    provider = catalog.providers.get(provider_key)
    default = provider.default_model if provider else None
    if agent.spec.model:
        return provider_key, agent.spec.model
    template_provider = tconf.llm_provider if tconf else None
    if agent.spec.provider and agent.spec.provider != template_provider:
        # The template's model belongs to the template's provider (gpt-4o means nothing to Ollama):
        # a provider chosen in the spec without a model gets that provider's default model.
        return provider_key, default
    return provider_key, (tconf.llm_model if tconf else None) or default


def secret_names_for(agent: Agent, catalog: Catalog) -> list[str]:
    """Every secret name translate may want for this agent (what the reconciler resolves)."""
    names = [ref.name for ref in agent.spec.secrets]
    template = catalog.templates.get(agent.spec.template or "")
    if template:
        names += template.secrets
    provider_key = agent.spec.provider or (template.config.llm_provider if template else None)
    provider = catalog.providers.get(provider_key or catalog.default_provider)
    if provider and provider.env_key:
        names.append(provider.env_key)
    names += program_for(agent, catalog).required_secret_files
    if agent.spec.tools:
        names += agent.spec.tools.secret_names()
    return sorted(set(names))
