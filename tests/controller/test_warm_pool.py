"""Warm pool, the pure parts: what a pool container starts with, what a claim writes, which agents
may claim which container, and the claim book that survives a controller restart."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from controller.agent_token import TOKEN_NAME, TokenInfo
from controller.catalog import Catalog, Template, load_catalog
from controller.plan import SecretMount
from controller.programs import program_named, warm_pool_program
from controller.programs.openclaw import CLAIM_SECRETS_FILE, CONFIG_FILE, POOL_SECRETS_FILE
from controller.resources import Agent, AgentSpec, ObjectMeta
from controller.settings import REPO_ROOT
from controller.translate import secret_names_for, translate
from controller.warm_pool.claims import Claim, ClaimBook
from controller.warm_pool.shape import claimable, pool_env, pool_plan, pool_sizes, shape

KEY = "sk-unit-" + "x" * 20
TOKEN = "agent-token-" + "y" * 20


def _catalog(size: int = 2, **config: object) -> Catalog:
    catalog = load_catalog(REPO_ROOT / "templates")
    template = Template.model_validate(
        {"name": "Pooled", "warmPool": size, "config": {"program": "openclaw", "llm_provider": "openai", **config}}
    )
    return replace(catalog, templates={**catalog.templates, "pooled": template})


class _Secret:
    scope, version = "global", "v1"


def _plan(catalog: Catalog, name: str = "finn", **spec: object):  # type: ignore[no-untyped-def]
    agent = Agent(metadata=ObjectMeta(name=name), spec=AgentSpec(template="pooled", **spec))  # type: ignore[arg-type]
    resolved = {n: _Secret() for n in secret_names_for(agent, catalog)}
    return translate(
        agent, catalog, resolved, instance="i", image="img", environ={}, agent_token=TokenInfo("agent-token", "t1")
    )


def _pool(catalog: Catalog):  # type: ignore[no-untyped-def]
    plan = pool_plan("pooled", catalog, instance="i", image="img", environ={})
    assert plan is not None
    return plan


def test_template_warm_pool_field() -> None:
    assert Template.model_validate({"name": "x", "warmPool": 3}).warm_pool == 3
    assert Template.model_validate({"name": "x", "warm_pool": 1}).warm_pool == 1
    assert Template.model_validate({"name": "x"}).warm_pool == 0
    with pytest.raises(ValidationError):
        Template.model_validate({"name": "x", "warmPool": -1})
    assert pool_sizes(_catalog(2)) == {"pooled": 2}
    assert pool_sizes(load_catalog(REPO_ROOT / "templates")) == {}  # shipped templates: no pool, as before


def test_an_agent_of_the_template_has_the_pool_containers_shape() -> None:
    catalog = _catalog()
    pool, agent = _pool(catalog), _plan(catalog)
    assert shape(pool) == shape(_plan(catalog, name="other")) == shape(agent)
    assert pool.env != agent.env  # CLAWPEN_AGENT_NAME...: per agent, and OpenClaw never reads them
    assert not any(k.startswith("CLAWPEN_") for k in pool_env(pool))
    # hardening and limits are the ones a real agent of the template gets
    for field in ("image", "memory_mb", "cpu", "user", "pids_limit", "read_only_rootfs", "tmpfs", "restart_policy"):
        assert getattr(pool, field) == getattr(agent, field)
    assert claimable(agent)


def test_anything_a_container_cannot_change_later_is_another_shape() -> None:
    catalog = _catalog()
    base = shape(_plan(catalog))
    assert shape(_plan(catalog, resources={"memoryMB": 4096})) != base
    assert shape(_plan(catalog, env={"LOG_LEVEL": "debug"})) != base
    assert shape(_plan(catalog, image="other:1")) != base
    assert shape(_plan(_catalog(cpu_cores=0.5))) != base


def test_what_cannot_be_claimed() -> None:
    catalog = _catalog()
    plan = _plan(catalog)
    assert not claimable(replace(plan, program="clawpen"))
    assert not claimable(replace(plan, running=False))
    assert not claimable(replace(plan, secrets=(*plan.secrets, SecretMount("EXTRA", "global", "v", as_env=True))))
    template = catalog.templates["pooled"]
    clawpen = template.model_copy(update={"config": template.config.model_copy(update={"program": "clawpen"})})
    assert (
        pool_plan("pooled", replace(catalog, templates={"pooled": clawpen}), instance="i", image="i", environ={})
        is None
    )


def test_pool_files_hold_no_agent_secret() -> None:
    program = warm_pool_program(program_named("openclaw"))
    assert program is not None and warm_pool_program(program_named("clawpen")) is None
    files = program.pool_files("throwaway")
    assert sorted(files) == [POOL_SECRETS_FILE, CONFIG_FILE]
    config = json.loads(files[CONFIG_FILE])
    assert config["gateway"]["auth"]["token"]["source"] == "file"
    assert json.loads(files[POOL_SECRETS_FILE]) == {"token": "throwaway"}
    assert "OPENAI_API_KEY" not in files[CONFIG_FILE].decode()


def test_claim_files_turn_env_refs_into_one_private_file() -> None:
    catalog = _catalog()
    plan = _plan(catalog)
    program = warm_pool_program(program_named("openclaw"))
    assert program is not None
    rendered = {f.name: f.content.encode() for f in plan.files}
    files = program.claim_files({**rendered, "OPENAI_API_KEY": KEY.encode(), TOKEN_NAME: TOKEN.encode()}, TOKEN_NAME)
    assert list(files) == [CLAIM_SECRETS_FILE, CONFIG_FILE]  # the secrets file is written first
    config_text = files[CONFIG_FILE].decode()
    assert KEY not in config_text and TOKEN not in config_text
    config = json.loads(config_text)
    original = json.loads(rendered[CONFIG_FILE])
    assert config["models"]["providers"]["openai"]["apiKey"] == {
        "source": "file",
        "provider": "clawpenclaim",
        "id": "/OPENAI_API_KEY",
    }
    assert config["gateway"]["auth"]["token"]["id"] == "/token"
    assert config["models"]["providers"]["openai"]["baseUrl"] == original["models"]["providers"]["openai"]["baseUrl"]
    assert config["agents"] == original["agents"]
    assert json.loads(files[CLAIM_SECRETS_FILE]) == {"OPENAI_API_KEY": KEY, "token": TOKEN}
    with pytest.raises(ValueError):
        program.claim_files({**rendered, "BIN": b"\xff\xfe"}, TOKEN_NAME)


def test_claim_book_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    book = ClaimBook(path)
    book.put(Claim("default/a", {"/data": "v_data"}, container="c1", plan_hash="h1", secrets_dir="/s", port=4000))
    again = ClaimBook(path)
    assert again.get("default/a") == book.get("default/a")
    assert again.by_container("c1") is not None and again.by_container("c2") is None
    again.release_container("default/a")
    claim = ClaimBook(path).get("default/a")
    assert claim is not None and claim.container is None and claim.volumes == {"/data": "v_data"}
    again.forget("default/a")
    assert ClaimBook(path).all() == []
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_readme_example_template_is_valid() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Warm pool") :]
    block = section[section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml\n"))]
    templates = yaml.safe_load(block)["templates"]
    (name, raw), *_ = templates.items()
    template = Template.model_validate(raw)
    assert template.warm_pool == 2 and template.config.program == "openclaw"
    catalog = load_catalog(REPO_ROOT / "templates")
    catalog = replace(catalog, templates={**catalog.templates, name: template})
    assert pool_sizes(catalog) == {name: 2}
    assert pool_plan(name, catalog, instance="i", image="i", environ={}) is not None
