"""Attack: read the controller's environment into an agent with `${VAR}` (issue 10, hole 2).

`env_vars: {A: "${CLAWPEN_SECRET_KEY}"}` used to copy the master key into the container and into
`docker inspect`. Now only CLAWPEN_VAR_* and variables the operator lists (CLAWPEN_INTERPOLATE_VARS)
are read; CLAWPEN_* settings and secret-looking names never are, default or not. The REST API
refuses such a spec with 422; a manifest or imported archive that carries one is Failed by translate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controller.catalog import load_catalog
from controller.interpolate import VarPolicy
from controller.resources import API_VERSION, parse_resource
from controller.settings import REPO_ROOT
from controller.translate import TranslateError, translate
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread

CONTROLLER_ENV = {
    "CLAWPEN_SECRET_KEY": "master-key",
    "CLAWPEN_ADMIN_PASSWORD": "admin-pw",
    "OPENAI_API_KEY": "sk-host",
    "CLAWPEN_HOME": "/root/.local/share/clawpen",
    "HOME": "/root",
    "CLAWPEN_VAR_REGION": "eu",
    "TEAM_NAME": "finance",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server: ServerThread = start_gateway(tmp_path_factory.mktemp("home"), interpolate_vars="TEAM_NAME")
    headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as c:
        yield c
    server.stop()


@pytest.mark.parametrize(
    "reference",
    ["${CLAWPEN_SECRET_KEY}", "${CLAWPEN_ADMIN_PASSWORD:-x}", "${OPENAI_API_KEY}", "${CLAWPEN_HOME}", "${HOME}"],
)
def test_rest_refuses_reading_the_controller_environment(client: httpx.Client, reference: str) -> None:
    answer = client.post("/api/agents", json={"name": "leaky", "config": {"env_vars": {"A": reference}}})
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["field"] == "config.env_vars.A" and "is not an allowed variable" in error["message"]


def test_rest_accepts_the_allow_list(client: httpx.Client) -> None:
    env = {"A": "${CLAWPEN_VAR_REGION:-us}", "B": "${TEAM_NAME}"}
    answer = client.post("/api/agents", json={"name": "fine", "config": {"env_vars": env}})
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("field", ["env", "model", "baseURL"])
def test_manifests_and_imports_fail_in_translate(field: str) -> None:
    """A spec that bypassed the REST check (apply -f, import, hand edit) never expands it."""
    spec: dict = {"provider": "ollama", "model": "m"}
    if field == "env":
        spec["env"] = {"A": "${CLAWPEN_SECRET_KEY}"}
    elif field == "model":
        spec["model"] = "${CLAWPEN_SECRET_KEY}"
    else:
        spec["baseURL"] = "http://x/${CLAWPEN_SECRET_KEY}"
    agent = parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "leaky"}, "spec": spec})
    with pytest.raises(TranslateError) as info:
        translate(
            agent,
            load_catalog(REPO_ROOT / "templates"),
            {},
            instance="i",
            image="img",
            environ=CONTROLLER_ENV,
            variables=VarPolicy(names=frozenset({"TEAM_NAME"})),
        )
    assert info.value.reason == "InvalidSpec"
    assert "CLAWPEN_SECRET_KEY} is not an allowed variable" in info.value.message
    assert "master-key" not in info.value.message


def test_templates_are_held_to_the_same_rule(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "providers.yaml").write_text((REPO_ROOT / "templates" / "providers.yaml").read_text())
    (templates / "agents.yaml").write_text(
        "templates:\n  evil:\n    name: Evil\n    description: d\n    config:\n      llm_provider: ollama\n"
        '      llm_model: m\n    env:\n      K: "${CLAWPEN_SECRET_KEY}"\n'
    )
    catalog = load_catalog(templates)
    agent = parse_resource(
        {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "t"}, "spec": {"template": "evil"}}
    )
    with pytest.raises(TranslateError, match="is not an allowed variable"):
        translate(agent, catalog, {}, instance="i", image="img", environ=CONTROLLER_ENV)


def test_nothing_leaks_into_a_plan_even_with_everything_opened_by_name() -> None:
    """Listing a secret-looking name in CLAWPEN_INTERPOLATE_VARS does not open it either."""
    agent = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Agent",
            "metadata": {"name": "x"},
            "spec": {"provider": "ollama", "model": "m", "env": {"A": "${OPENAI_API_KEY}"}},
        }
    )
    policy = VarPolicy(names=frozenset(CONTROLLER_ENV))
    with pytest.raises(TranslateError, match="looks like a secret"):
        translate(
            agent,
            load_catalog(REPO_ROOT / "templates"),
            {},
            instance="i",
            image="img",
            environ=CONTROLLER_ENV,
            variables=policy,
        )
