"""Which model a team's LLM router asks, resolved from the team's [router] and the provider catalog.

The team names a provider (a key of templates/providers.yaml), a model and optionally a base URL, just
like an Agent does, so LLM routing goes through the same provider adapters (agent/providers.py) as the
agents' own replies. Resolution is pure: the caller passes the catalog's providers, the environment
for `${VAR:-default}` in base URLs, and a way to look up the API key (the secret store, then env).
A team that cannot be resolved gets a one-line reason and routes by keywords instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from controller.interpolate import VarPolicy, interpolate
from controller.resources import Team


@dataclass(frozen=True)
class RouterModel:
    provider: str
    api_style: Literal["openai", "anthropic"]
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)


def resolve_router_model(
    team: Team,
    providers: Mapping[str, Any],
    environ: Mapping[str, str],
    lookup_key: Callable[[str], str | None],
) -> RouterModel | str:
    """The router's model, or why there is none (the message never contains a key)."""
    router = team.spec.router
    if router.mode == "keyword":
        return "the team routes by keywords only"
    if not router.provider:
        return f"team {team.name}: [router].provider is not set"
    provider = providers.get(router.provider)
    if provider is None:
        known = ", ".join(sorted(providers)) or "none"
        return f"team {team.name}: unknown provider {router.provider!r} (known: {known})"
    model = router.model or getattr(provider, "default_model", None)
    if not model:
        return f"team {team.name}: [router].model is not set and {router.provider} has no default model"
    raw_url = router.base_url or getattr(provider, "base_url", None)
    if not raw_url:
        return f"team {team.name}: provider {router.provider} has no base URL; set [router].base_url"
    try:
        # The provider catalog is the operator's file (plain names like OPENAI_BASE_URL are fine); a
        # team's own base_url is user input and reads only CLAWPEN_VAR_* (controller.interpolate).
        policy = VarPolicy(plain=not router.base_url)
        base_url = interpolate(raw_url, environ, f"team {team.name} router base URL", policy)
    except ValueError as err:
        return str(err)
    env_key = getattr(provider, "env_key", None)
    api_key = lookup_key(env_key) if env_key else None
    if env_key and not api_key:
        return f"team {team.name}: no {env_key} in the secret store or environment for LLM routing"
    return RouterModel(router.provider, getattr(provider, "api_style", "openai"), base_url, model, api_key)


def router_problem(team: Team, providers: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """What keeps the team's model router from working, as far as its configuration tells (the API
    key is looked up only when a message is routed), or None. Keyword and semantic routing need no
    model; hybrid without a provider is keywords-then-semantic by design."""
    router = team.spec.router
    if router.mode in ("keyword", "semantic") or (router.mode == "hybrid" and not router.provider):
        return None
    resolved = resolve_router_model(team, providers, environ, lambda _name: "checked when used")
    return resolved if isinstance(resolved, str) else None
