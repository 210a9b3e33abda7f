"""The seed's flat agent config <-> the Agent resource.

Clients speak `{llm_provider, llm_model, memory_mb, env_vars...}`; the store holds an AgentSpec. The
Agent model keeps every rule (name format, limits, forbidden mounts), so this module only renames:
it builds the resource, lets the model validate it, and renames the error locations back to the
request's field names so a 422 names what the client sent (`config.memory_mb`, not
`spec.resources.memoryMB`).
"""

from __future__ import annotations

import re
from typing import Any, cast

from pydantic import ValidationError

from api.errors import ApiError, field_errors, invalid
from api.schemas import (
    AgentConfig,
    AgentConfigOut,
    AgentCreate,
    AgentOut,
    AgentUpdate,
    ConditionOut,
    SecretIn,
    StatusName,
    VolumeIn,
)
from api.schemas import DesiredState as DesiredStateName
from controller.resources import Agent, AgentSpec, DesiredState, Phase

MASK = "********"
SECRET_LOOKING = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)

# spec path (aliases) -> request path
_SPEC_TO_REQUEST: dict[tuple[str, ...], str] = {
    ("provider",): "config.llm_provider",
    ("model",): "config.llm_model",
    ("baseURL",): "config.base_url",
    ("resources", "memoryMB"): "config.memory_mb",
    ("resources", "cpu"): "config.cpu_cores",
    ("resources", "preset"): "config.preset",
    ("env",): "config.env_vars",
    ("secrets",): "config.secrets",
    ("restartPolicy",): "config.restart_policy",
    ("volumes",): "config.volumes",
    ("systemPrompt",): "config.system_prompt",
    ("isolation",): "config.isolation",
    ("program",): "config.program",
    ("tools",): "config.tools",
    ("idle",): "config.idle",
    ("template",): "template",
    ("project",): "project",
    ("tags",): "tags",
    ("state",): "state",
}


def _request_field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if not (isinstance(p, str) and "[" in p)]  # drop pydantic's validator names
    if parts[:2] == ["metadata", "name"]:
        return "name"
    if parts and parts[0] == "spec":
        rest = tuple(str(p) for p in parts[1:])
        for length in (2, 1):
            if rest[:length] in _SPEC_TO_REQUEST:
                return ".".join([_SPEC_TO_REQUEST[rest[:length]], *rest[length:]])
    return ".".join(str(p) for p in parts) or "body"


def _validation_to_api(err: ValidationError) -> ApiError:
    errors = [
        {"field": _request_field(tuple(e["loc"])), "message": e["msg"].removeprefix("Value error, ")}
        for e in err.errors(include_url=False, include_input=False)
    ]
    return invalid(errors)


def _volume(v: VolumeIn | str, index: int) -> dict[str, Any]:
    if isinstance(v, VolumeIn):
        return {"source": v.source, "target": v.target, "readOnly": v.read_only}
    parts = v.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise invalid([{"field": f"config.volumes.{index}", "message": 'use "source:target" or "source:target:ro"'}])
    return {"source": parts[0], "target": parts[1], "readOnly": len(parts) == 3 and parts[2] == "ro"}


def _secret(s: SecretIn | str) -> dict[str, Any]:
    return {"name": s} if isinstance(s, str) else {"name": s.name, "asEnv": s.as_env}


def config_to_spec_fields(config: AgentConfig) -> dict[str, Any]:
    """The spec fields (by alias) a config sets; env_vars is left to the caller (it merges on update)."""
    spec: dict[str, Any] = {}
    for src, dst in (
        ("llm_provider", "provider"),
        ("llm_model", "model"),
        ("base_url", "baseURL"),
        ("restart_policy", "restartPolicy"),
        ("system_prompt", "systemPrompt"),
        ("isolation", "isolation"),
        ("program", "program"),
    ):
        value = getattr(config, src)
        if value is not None:
            spec[dst] = value
    resources = {
        k: v
        for k, v in (("preset", config.preset), ("memoryMB", config.memory_mb), ("cpu", config.cpu_cores))
        if v is not None
    }
    if resources:
        spec["resources"] = resources
    if config.secrets is not None:
        spec["secrets"] = [_secret(s) for s in config.secrets]
    if config.volumes is not None:
        spec["volumes"] = [_volume(v, i) for i, v in enumerate(config.volumes)]
    for extra in ("tools", "idle"):
        if getattr(config, extra) is not None:
            spec[extra] = getattr(config, extra)
    return spec


# Spec fields a PUT's config replaces (unset in the config = back to the template's default), as the
# seed's clients expect. Everything else in the spec — fields a manifest set that the seed's config does
# not know — is kept, and so are tools/idle unless the config names them (null removes them).
_REPLACED_BY_CONFIG: tuple[str, ...] = ("provider", "model", "baseURL", "restartPolicy", "systemPrompt")
_REPLACED_BY_CONFIG += ("isolation", "program", "resources", "secrets", "volumes")


def _build(name: str, namespace: str, spec: dict[str, Any], base: Agent | None = None) -> Agent:
    doc: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
    if base is not None:
        doc["metadata"] = base.metadata.model_dump(by_alias=True, mode="json", exclude_none=True)
    try:
        return Agent.model_validate(doc)
    except ValidationError as err:
        raise _validation_to_api(err) from None


def agent_from_create(body: AgentCreate, namespace: str) -> Agent:
    config = body.config or AgentConfig()
    spec = config_to_spec_fields(config)
    spec["env"] = {k: v for k, v in (config.env_vars or {}).items() if v is not None}
    for field in ("template", "project", "tags"):
        if getattr(body, field) is not None:
            spec[field] = getattr(body, field)
    spec["state"] = DesiredState.STOPPED if body.state == "stopped" else DesiredState.RUNNING
    return _build(body.name, namespace, spec)


def agent_from_update(current: Agent, body: AgentUpdate) -> Agent:
    """The replacement object: config replaced (env merged), omitted top-level fields kept."""
    old = current.spec
    if body.config is None:
        spec = old.model_dump(by_alias=True, exclude_none=True, mode="json")
    else:
        spec = old.model_dump(by_alias=True, exclude_none=True, mode="json")
        for replaced in _REPLACED_BY_CONFIG:
            spec.pop(replaced, None)
        for extra in ("tools", "idle"):
            if extra in body.config.model_fields_set:
                spec.pop(extra, None)
        spec.update(config_to_spec_fields(body.config))
        env = dict(old.env)
        for key, value in (body.config.env_vars or {}).items():
            if value is None:
                env.pop(key, None)
            elif value != MASK:  # a client echoing back a masked value means "unchanged"
                env[key] = value
        spec["env"] = env
    spec["state"] = old.state.value
    for field in ("template", "project", "tags"):
        if getattr(body, field) is not None:
            spec[field] = getattr(body, field)
    updated = _build(current.name, current.metadata.namespace, spec, base=current)
    if body.resource_version is not None:
        updated.metadata.resource_version = body.resource_version
    return updated


def status_name(agent: Agent) -> StatusName:
    phase = agent.status.phase if agent.status else Phase.PENDING
    return cast(StatusName, phase.value.lower())


def desired_state(agent: Agent) -> DesiredStateName:
    return cast(DesiredStateName, agent.spec.state.value.lower())


def config_out(spec: AgentSpec) -> AgentConfigOut:
    res = spec.resources
    return AgentConfigOut(
        llm_provider=spec.provider,
        llm_model=spec.model,
        base_url=spec.base_url,
        memory_mb=res.memory_mb if res else None,
        cpu_cores=res.cpu if res else None,
        preset=res.preset if res else None,
        env_vars={k: (MASK if SECRET_LOOKING.search(k) else v) for k, v in spec.env.items()},
        secrets=[s.name for s in spec.secrets],
        restart_policy=spec.restart_policy,
        volumes=[VolumeIn(source=v.source, target=v.target, read_only=v.read_only) for v in spec.volumes],
        system_prompt=spec.system_prompt,
        isolation=spec.isolation,
        program=spec.program,
        tools=spec.tools.model_dump(by_alias=True, mode="json") if spec.tools else None,
        idle=spec.idle.model_dump(by_alias=True, mode="json") if spec.idle else None,
    )


def agent_out(agent: Agent) -> AgentOut:
    status = agent.status
    meta = agent.metadata
    return AgentOut(
        id=agent.name,
        name=agent.name,
        status=status_name(agent),
        desired_state=desired_state(agent),
        template=agent.spec.template,
        config=config_out(agent.spec),
        project=agent.spec.project,
        tags=list(agent.spec.tags),
        labels=dict(meta.labels),
        created_at=meta.creation_timestamp,
        conditions=[ConditionOut.model_validate(c.model_dump()) for c in (status.conditions if status else [])],
        message=status.message if status else None,
        endpoint=status.endpoint if status else None,
        restart_count=status.restart_count if status else 0,
        resource_version=meta.resource_version,
        generation=meta.generation,
        observed_generation=status.observed_generation if status else None,
    )


def body_errors(err: ValidationError) -> ApiError:
    """A request body that does not match its schema."""
    return invalid(field_errors(err))


__all__ = ["MASK", "agent_from_create", "agent_from_update", "agent_out", "body_errors", "status_name"]
