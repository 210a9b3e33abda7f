"""render_tools() golden files: tests/controller/golden/tools/<case>.yaml → <case>.env.json.

Each input is a spec.tools (or null) and a template's default built-ins; the output is the
environment the agent receives. `UPDATE_GOLDEN=1 pytest tests/controller/test_tools_config.py`
rewrites them; review the diff. The agent's own parser must accept every rendered document.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from agent.tools.config import ToolsConfig
from controller.resources import ManifestError, ToolsSpec, parse_resource
from controller.tools_config import render_tools

GOLDEN = Path(__file__).parent / "golden" / "tools"
CASES = sorted(GOLDEN.glob("*.yaml"))


def render(case: Path) -> dict[str, str]:
    doc = yaml.safe_load(case.read_text())
    tools = ToolsSpec.model_validate(doc["tools"]) if doc["tools"] is not None else None
    return render_tools(tools, doc["templateBuiltin"])


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    expected = case.with_suffix(".env.json")
    actual = render(case)
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert expected.exists(), f"no golden file {expected.name}; run with UPDATE_GOLDEN=1 and review it"
    assert actual == json.loads(expected.read_text())
    parsed = ToolsConfig.from_env(actual)  # the agent reads what the controller writes
    assert parsed.enabled == bool(actual)


def test_agent_reads_policies_and_servers() -> None:
    env = render(GOLDEN / "builtin-off-mcp-only.yaml")
    config = ToolsConfig.from_env(env)
    assert config.builtin == ()
    assert config.needs_approval("docs__search") and not config.needs_approval("time__get_current_time")
    assert [(s.name, s.transport) for s in config.mcp_servers] == [("time", "stdio"), ("docs", "http")]


@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ({"builtin": ["rm_rf"]}, "spec.tools.builtin"),
        ({"approval": "sometimes"}, "spec.tools.approval"),
        ({"maxSteps": 0}, "spec.tools.maxSteps"),
        ({"mcpServers": [{"name": "x"}]}, "spec.tools.mcpServers"),
        ({"mcpServers": [{"name": "x", "url": "http://a", "command": "b"}]}, "spec.tools.mcpServers"),
        ({"mcpServers": [{"name": "a b", "url": "http://a"}]}, "spec.tools.mcpServers"),
        ({"mcpServers": [{"name": "a", "url": "http://a"}, {"name": "a", "url": "http://b"}]}, "spec.tools.mcpServers"),
    ],
)
def test_invalid_tools_name_the_field(tools: dict, field: str) -> None:
    doc = {"apiVersion": "clawpen.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "t"}, "spec": {"tools": tools}}
    with pytest.raises(ManifestError) as err:
        parse_resource(doc)
    assert field in str(err.value)


def test_agent_reads_secret_references_not_values() -> None:
    env = render(GOLDEN / "mcp-credentials-from-secrets.yaml")
    github, search = ToolsConfig.from_env(env).mcp_servers
    assert (github.secret_headers["Authorization"].secret, github.secret_headers["Authorization"].prefix) == (
        "GITHUB_TOKEN",
        "Bearer ",
    )
    assert search.secret_env["SEARCH_API_KEY"].secret == "SEARCH_KEY"  # the shorthand {VAR: NAME}
    case = yaml.safe_load((GOLDEN / "mcp-credentials-from-secrets.yaml").read_text())
    tools = ToolsSpec.model_validate(case["tools"])
    assert tools.secret_names() == ["GITHUB_TOKEN", "SEARCH_KEY"]


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (
            {"url": "http://a", "headers": {"Authorization": "Bearer abc"}},
            "Authorization: a credential written in the spec reaches the container's environment and `docker "
            "inspect`; use secretHeaders: {Authorization: {secret: NAME}} (set the value with "
            "`clawpen secrets set NAME`)",
        ),
        ({"url": "http://a", "headers": {"X-Api-Key": "abc"}}, "use secretHeaders"),
        ({"url": "http://a", "headers": {"cookie": "sid=1"}}, "use secretHeaders"),
        (
            {"command": "x", "env": {"GITHUB_TOKEN": "ghp_abc"}},
            "GITHUB_TOKEN: a credential written in the spec reaches the container's environment and `docker "
            "inspect`; use secretEnv: {GITHUB_TOKEN: NAME} (set the value with `clawpen secrets set NAME`)",
        ),
        ({"command": "x", "env": {"DB_PASSWORD": "pw"}}, "use secretEnv"),
        ({"command": "x", "secretHeaders": {"Authorization": "T"}}, "only url servers send headers"),
        ({"url": "http://a", "secretEnv": {"TOKEN": "T"}}, "only command (stdio) servers"),
        ({"url": "http://a", "secretHeaders": {"Authorization": {"secret": "../x"}}}, "secret"),
        (
            {"url": "http://a", "headers": {"X-Team": "a"}, "secretHeaders": {"x-team": "T"}},
            "both as a literal and from a secret",
        ),
    ],
)
def test_credentials_written_in_the_spec_are_refused(server: dict, message: str) -> None:
    doc = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "t"},
        "spec": {"tools": {"mcpServers": [{"name": "s", **server}]}},
    }
    with pytest.raises(ManifestError) as err:
        parse_resource(doc)
    assert "spec.tools.mcpServers" in str(err.value) and message in str(err.value)
