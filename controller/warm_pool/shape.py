"""Which container a warm pool keeps, and which agents may take one. Pure: no I/O.

Docker cannot change a container's image, env, limits, mounts or hardening after create, so an
agent can only take a pool container made exactly as its own would be, except for what the program
accepts after start (its config and secret files) and our own CLAWPEN_* env, which OpenClaw never
reads. The pool's container is planned by translate() itself, for a stand-in agent of the template
(name `warm-pool`, placeholder secrets): hardening and limits are the ones a real agent of that
template gets, by construction. The *shape* hashes what must match; an agent whose spec changes any
of it (resources, env, image, volumes, isolation) simply gets a container of its own, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from controller.agent_token import TokenInfo
from controller.catalog import Catalog
from controller.interpolate import VarPolicy
from controller.plan import WorkloadPlan
from controller.programs import program_named, warm_pool_program
from controller.resources import Agent, AgentSpec, ObjectMeta
from controller.translate import program_for, secret_names_for, translate

STAND_IN = "warm-pool"  # the stand-in agent's name (never stored, never run under this name)


@dataclass(frozen=True)
class _Placeholder:
    scope: str = "global"
    version: str = "warm-pool"


def pool_env(plan: WorkloadPlan) -> dict[str, str]:
    """The env a pool container starts with: the plan's, minus our own per-agent CLAWPEN_* names."""
    return {k: v for k, v in sorted(plan.env.items()) if not k.startswith("CLAWPEN_")}


def shape(plan: WorkloadPlan) -> str:
    """Hash of everything a container cannot change after create (what a claim must match)."""
    fields = {
        "image": plan.image,
        "env": pool_env(plan),
        "memory_mb": plan.memory_mb,
        "cpu": plan.cpu,
        "restart_policy": plan.restart_policy,
        "mounts": [list(m.__dict__.values()) for m in plan.mounts],
        "port": plan.port,
        "user": plan.user,
        "pids_limit": plan.pids_limit,
        "read_only_rootfs": plan.read_only_rootfs,
        "tmpfs": list(plan.tmpfs),
        "extra_hosts": [list(h) for h in plan.extra_hosts],
        "isolation": plan.isolation,
        "program": plan.program,
        "instance": plan.instance,
    }
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def claimable(plan: WorkloadPlan) -> bool:
    """Whether the plan's program takes its config after start and nothing else stands in the way."""
    if warm_pool_program(program_named(plan.program)) is None or not plan.running:
        return False
    return not plan.mounts and not any(secret.as_env for secret in plan.secrets)


def pool_plan(
    template: str,
    catalog: Catalog,
    *,
    instance: str,
    image: str,
    environ: Mapping[str, str],
    variables: VarPolicy | None = None,
    isolation: str = "default",
) -> WorkloadPlan | None:
    """The plan of a pool container for `template`, or None when its program cannot be pooled.
    Raises TranslateError when the template itself cannot be planned (unknown provider...)."""
    agent = Agent(metadata=ObjectMeta(name=STAND_IN, namespace="default"), spec=AgentSpec(template=template))
    if warm_pool_program(program_for(agent, catalog)) is None:
        return None
    placeholders = {name: _Placeholder() for name in secret_names_for(agent, catalog)}
    return translate(
        agent,
        catalog,
        placeholders,
        instance=instance,
        image=image,
        environ=environ,
        agent_token=TokenInfo("agent", "warm-pool"),
        variables=variables,
        isolation=isolation,
    )


def pool_sizes(catalog: Catalog) -> dict[str, int]:
    """template name → how many warm containers it asks for (templates with 0 are left out)."""
    return {name: t.warm_pool for name, t in sorted(catalog.templates.items()) if t.warm_pool > 0}
