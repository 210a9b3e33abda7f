"""Resolving a team router's model from the provider catalog, env and key lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.catalog import load_providers
from controller.resources import Team
from controller.teams.model import RouterModel, resolve_router_model
from controller.teams.toml_format import load_team_file

ROOT = Path(__file__).resolve().parents[3]
PROVIDERS = load_providers(ROOT / "templates" / "providers.yaml")


@pytest.fixture
def finance() -> Team:
    return load_team_file(ROOT / "teams" / "finance-team.toml")


def keys(**values: str):  # type: ignore[no-untyped-def]
    return lambda name: values.get(name)


def test_resolves_provider_model_url_and_key(finance: Team) -> None:
    got = resolve_router_model(finance, PROVIDERS, {}, keys(OPENAI_API_KEY="sk-test"))
    assert got == RouterModel("openai", "openai", "https://api.openai.com/v1", "gpt-4o-mini", "sk-test")
    assert "sk-test" not in repr(got)


def test_base_url_from_env_and_team_override(finance: Team) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    got = resolve_router_model(finance, PROVIDERS, env, keys(OPENAI_API_KEY="k"))
    assert isinstance(got, RouterModel) and got.base_url == "http://127.0.0.1:9/v1"
    finance.spec.router.base_url = "http://127.0.0.1:8/v1"
    got = resolve_router_model(finance, PROVIDERS, {}, keys(OPENAI_API_KEY="k"))
    assert isinstance(got, RouterModel) and got.base_url == "http://127.0.0.1:8/v1"


def test_anthropic_style_for_the_platform_team() -> None:
    team = load_team_file(ROOT / "teams" / "platform-support.toml")
    got = resolve_router_model(team, PROVIDERS, {}, keys(ANTHROPIC_API_KEY="k"))
    assert isinstance(got, RouterModel) and got.api_style == "anthropic" and got.model == "claude-haiku-4-5"


@pytest.mark.parametrize(("change", "reason"), [
    ({"mode": "keyword"}, "keywords only"),
    ({"provider": None}, "[router].provider is not set"),
    ({"provider": "nope"}, "unknown provider 'nope'"),
    ({"base_url": "${CLAWPEN_VAR_NOPE}"}, "CLAWPEN_VAR_NOPE is not set"),
    # A team's base_url is user input: it never reads the gateway's settings or secrets (issue 10).
    ({"base_url": "http://x/${CLAWPEN_SECRET_KEY}"}, "${CLAWPEN_SECRET_KEY} is not an allowed variable"),
    ({"base_url": "http://x/${HOME}"}, "${HOME} is not an allowed variable"),
])
def test_unresolvable_routers_say_why(finance: Team, change: dict[str, object], reason: str) -> None:
    for key, value in change.items():
        setattr(finance.spec.router, key, value)
    got = resolve_router_model(finance, PROVIDERS, {}, keys(OPENAI_API_KEY="k"))
    assert isinstance(got, str) and reason in got


def test_missing_key_says_which(finance: Team) -> None:
    got = resolve_router_model(finance, PROVIDERS, {}, keys())
    assert isinstance(got, str) and "no OPENAI_API_KEY" in got
