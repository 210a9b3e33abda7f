"""Agents REST through the real server and store: CRUD, the flat config mapping, 409s and 422s.

The controller is not running here, so a test that needs a status writes it the way the controller
does (store.update_status); everything else is what a client sees over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from controller.resources import Agent, AgentStatus, Condition, DesiredState, Phase
from tests.api.conftest import start_gateway
from tests.api.harness import ServerThread


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The operator opened /srv for host mounts and the named volume `notes` (the policy is off by default)."""
    server = start_gateway(tmp_path_factory.mktemp("home"), host_mounts="/srv", allowed_volumes="notes")
    yield server
    server.stop()


def _store(gateway: ServerThread) -> Any:
    return gateway.app.state.deps.store


def _stored(gateway: ServerThread, name: str) -> Agent:
    return gateway.call(_store(gateway).get(Agent, name))


def _create(client: httpx.Client, name: str, **body: Any) -> httpx.Response:
    return client.post("/api/agents", json={"name": name, **body})


def _fields(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 422, answer.text
    return {e["field"] for e in answer.json()["detail"]}


def test_create_answers_201_pending_with_seed_fields(client: httpx.Client, gateway: ServerThread) -> None:
    config = {
        "llm_provider": "openai",
        "llm_model": "gpt-4o",
        "memory_mb": 2048,
        "cpu_cores": 1.5,
        "env_vars": {"LOG_LEVEL": "debug"},
        "secrets": ["OPENAI_API_KEY"],
        "restart_policy": "always",
        "volumes": [{"source": "notes", "target": "/notes"}, "/srv/ref:/ref:ro"],
    }
    answer = _create(client, "finn", template="coding-assistant", config=config, project="fin", tags=["a", "b"])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["id"] == body["name"] == "finn"
    assert body["status"] == "pending" and body["desired_state"] == "running"
    assert body["project"] == "fin" and body["tags"] == ["a", "b"] and body["template"] == "coding-assistant"
    assert body["created_at"] and body["resource_version"] and body["conditions"] == []
    assert body["config"]["memory_mb"] == 2048 and body["config"]["cpu_cores"] == 1.5
    assert body["config"]["secrets"] == ["OPENAI_API_KEY"]
    assert body["config"]["volumes"][1] == {"source": "/srv/ref", "target": "/ref", "read_only": True}
    spec = _stored(gateway, "finn").spec
    assert (spec.provider, spec.model, spec.resources.memory_mb, spec.resources.cpu) == (
        "openai",
        "gpt-4o",
        2048,
        1.5,
    )
    assert spec.env == {"LOG_LEVEL": "debug"} and spec.restart_policy == "always"
    assert spec.state == DesiredState.RUNNING


def test_create_existing_name_is_409(client: httpx.Client) -> None:
    assert _create(client, "dupe").status_code == 201
    answer = _create(client, "dupe")
    assert answer.status_code == 409 and "dupe" in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Not_A_Name"}, "name"),
        ({"name": "ok", "config": {"memory_mb": 0}}, "config.memory_mb"),
        ({"name": "ok", "config": {"memory_mb": "lots"}}, "config.memory_mb"),
        ({"name": "ok", "config": {"cpu_cores": -1}}, "config.cpu_cores"),
        ({"name": "ok", "config": {"preset": "huge"}}, "config.preset"),
        ({"name": "ok", "config": {"env_vars": {"1BAD": "x"}}}, "config.env_vars"),
        (
            {"name": "ok", "config": {"volumes": [{"source": "/etc", "target": "/x"}]}},
            "config.volumes.0.source",
        ),
        (
            {"name": "ok", "config": {"volumes": [{"source": "v", "target": "/proc/x"}]}},
            "config.volumes.0.target",
        ),
        ({"name": "ok", "config": {"volumes": ["just-one-part"]}}, "config.volumes.0"),
        ({"name": "ok", "config": {"base_url": "ftp://x"}}, "config.base_url"),
        ({"name": "ok", "config": {"restart_policy": "sometimes"}}, "config.restart_policy"),
        ({"name": "ok", "config": {"typo_field": 1}}, "config.typo_field"),
        ({"name": "ok", "template": "no-such-template"}, "template"),
        ({"name": "ok", "config": {"llm_provider": "no-such-provider"}}, "config.llm_provider"),
        ({"config": {}}, "name"),
    ],
)
def test_create_validation_422_names_the_field(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    answer = client.post("/api/agents", json=body)
    assert field in _fields(answer)
    assert field in answer.json()["error"]


def test_create_bad_json_is_400(client: httpx.Client) -> None:
    answer = client.post("/api/agents", content=b'{"name": ', headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"] == "request body is not valid JSON"


def test_get_and_unknown(client: httpx.Client) -> None:
    _create(client, "gina")
    assert client.get("/api/agents/gina").json()["id"] == "gina"
    for name in ("nobody", "Bad..Name", "x" * 80):
        answer = client.get(f"/api/agents/{name}")
        assert answer.status_code == 404 and set(answer.json()) == {"error", "detail"}


def test_list_filters(client: httpx.Client, gateway: ServerThread) -> None:
    _create(client, "lf-one", project="alpha", tags=["blue"])
    _create(client, "lf-two", project="alpha", tags=["red"])
    _create(client, "lf-three", project="beta", tags=["blue"])
    gateway.call(_store(gateway).update_status(Agent, "lf-two", AgentStatus(phase=Phase.RUNNING)))

    def names(query: dict[str, str]) -> set[str]:
        return {a["name"] for a in client.get("/api/agents", params=query).json() if a["name"].startswith("lf-")}

    assert names({}) == {"lf-one", "lf-two", "lf-three"}
    assert names({"project": "alpha"}) == {"lf-one", "lf-two"}
    assert names({"tag": "blue"}) == {"lf-one", "lf-three"}
    assert names({"status": "running"}) == {"lf-two"}
    assert names({"project": "alpha", "status": "pending"}) == {"lf-one"}
    assert "status" in _fields(client.get("/api/agents", params={"status": "sleepy"}))


def test_status_and_conditions_come_from_the_controller(client: httpx.Client, gateway: ServerThread) -> None:
    _create(client, "watched")
    status = AgentStatus(
        phase=Phase.FAILED,
        observed_generation=1,
        message="image missing",
        conditions=[Condition(type="Ready", status="False", reason="ImageMissing", message="build it")],
    )
    gateway.call(_store(gateway).update_status(Agent, "watched", status))
    body = client.get("/api/agents/watched").json()
    assert body["status"] == "failed" and body["message"] == "image missing"
    assert body["conditions"][0]["reason"] == "ImageMissing" and body["observed_generation"] == 1


def test_put_merges_env_and_replaces_the_rest(client: httpx.Client, gateway: ServerThread) -> None:
    _create(
        client,
        "upd",
        template="coding-assistant",
        project="p1",
        config={"memory_mb": 1024, "llm_model": "m1", "env_vars": {"KEEP": "1", "DROP": "2", "CHANGE": "a"}},
    )
    before = client.get("/api/agents/upd").json()
    answer = client.put(
        "/api/agents/upd",
        json={"config": {"memory_mb": 2048, "env_vars": {"CHANGE": "b", "DROP": None, "NEW": "n"}}},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["config"]["env_vars"] == {"KEEP": "1", "CHANGE": "b", "NEW": "n"}
    assert body["config"]["memory_mb"] == 2048
    assert body["config"]["llm_model"] is None  # not in this config: replaced, i.e. back to the template's
    assert body["project"] == "p1" and body["template"] == "coding-assistant"  # top-level fields omitted: kept
    assert body["generation"] == before["generation"] + 1
    assert _stored(gateway, "upd").spec.resources.memory_mb == 2048


def test_tools_and_idle_over_rest_and_a_put_without_them_keeps_them(
    client: httpx.Client, gateway: ServerThread
) -> None:
    tools = {
        "builtin": ["read_file"],
        "approval": "always",
        "mcpServers": [{"name": "gh", "url": "https://mcp.example.test/mcp", "secretHeaders": {"Authorization": "GH"}}],
    }
    answer = _create(client, "toolly", config={"tools": tools, "idle": {"suspendAfter": "15m"}})
    assert answer.status_code == 201, answer.text
    out = answer.json()["config"]
    assert out["tools"]["builtin"] == ["read_file"] and out["tools"]["approval"] == "always"
    assert out["tools"]["mcpServers"][0]["secretHeaders"] == {"Authorization": {"secret": "GH", "prefix": ""}}
    assert out["idle"] == {"suspendAfter": "15m"}
    # A seed client that knows nothing of tools changes the memory: tools and idle stay.
    again = client.put("/api/agents/toolly", json={"config": {"memory_mb": 1024}}).json()
    assert again["config"]["tools"]["builtin"] == ["read_file"] and again["config"]["idle"] == {"suspendAfter": "15m"}
    assert _stored(gateway, "toolly").spec.tools is not None
    # Named as null: removed.
    removed = client.put("/api/agents/toolly", json={"config": {"tools": None}}).json()
    assert removed["config"]["tools"] is None and removed["config"]["idle"] == {"suspendAfter": "15m"}
    # Invalid tools name the request's field; a credential written in a header is refused.
    bad = {"mcpServers": [{"name": "x", "url": "http://a", "headers": {"Authorization": "Bearer sk"}}]}
    fields = _fields(_create(client, "toolbad", config={"tools": bad}))
    assert any(f.startswith("config.tools.mcpServers") for f in fields), fields


def test_put_with_stale_resource_version_is_409(client: httpx.Client) -> None:
    created = _create(client, "stale").json()
    assert client.put("/api/agents/stale", json={"tags": ["x"]}).status_code == 200
    answer = client.put("/api/agents/stale", json={"tags": ["y"], "resource_version": created["resource_version"]})
    assert answer.status_code == 409
    assert client.get("/api/agents/stale").json()["tags"] == ["x"]


def test_put_validation_and_unknown(client: httpx.Client) -> None:
    _create(client, "putv")
    assert "config.memory_mb" in _fields(client.put("/api/agents/putv", json={"config": {"memory_mb": -5}}))
    assert "name" in _fields(client.put("/api/agents/putv", json={"name": "rename"}))
    assert client.put("/api/agents/ghost", json={"tags": []}).status_code == 404


def test_secret_looking_env_values_are_masked_and_kept(client: httpx.Client, gateway: ServerThread) -> None:
    answer = _create(client, "masked", config={"env_vars": {"OPENAI_API_KEY": "sk-live-123", "MODE": "x"}})
    assert "sk-live-123" not in answer.text
    assert answer.json()["config"]["env_vars"] == {"OPENAI_API_KEY": "********", "MODE": "x"}
    echoed = answer.json()["config"]
    assert client.put("/api/agents/masked", json={"config": {"env_vars": echoed["env_vars"]}}).status_code == 200
    assert _stored(gateway, "masked").spec.env["OPENAI_API_KEY"] == "sk-live-123"
    assert "sk-live-123" not in client.get("/api/agents").text


def test_start_and_stop_patch_the_desired_state(client: httpx.Client, gateway: ServerThread) -> None:
    _create(client, "toggle")
    stop = client.post("/api/agents/toggle/stop")
    assert stop.status_code == 202 and stop.json()["desired_state"] == "stopped"
    assert _stored(gateway, "toggle").spec.state == DesiredState.STOPPED
    assert client.put("/api/agents/toggle", json={"config": {"memory_mb": 600}}).json()["desired_state"] == "stopped"
    start = client.post("/api/agents/toggle/start")
    assert start.status_code == 202 and start.json()["desired_state"] == "running"
    assert _stored(gateway, "toggle").spec.state == DesiredState.RUNNING
    assert client.post("/api/agents/ghost/start").status_code == 404


def test_create_stopped(client: httpx.Client) -> None:
    assert _create(client, "born-stopped", state="stopped").json()["desired_state"] == "stopped"


def test_start_all_and_stop_all_by_project(client: httpx.Client, gateway: ServerThread) -> None:
    for name in ("bulk-a", "bulk-b"):
        _create(client, name, project="bulk")
    _create(client, "bulk-other", project="elsewhere")
    answer = client.post("/api/agents/stop-all", params={"project": "bulk"})
    assert answer.status_code == 202
    assert answer.json() == {
        "desired_state": "stopped",
        "project": "bulk",
        "agents": ["bulk-a", "bulk-b"],
        "count": 2,
    }
    assert _stored(gateway, "bulk-other").spec.state == DesiredState.RUNNING
    assert client.post("/api/agents/start-all", params={"project": "bulk"}).json()["count"] == 2
    assert _stored(gateway, "bulk-a").spec.state == DesiredState.RUNNING


def test_delete(client: httpx.Client) -> None:
    _create(client, "doomed")
    assert client.delete("/api/agents/doomed").status_code == 204
    assert client.get("/api/agents/doomed").status_code == 404
    assert client.delete("/api/agents/doomed").status_code == 404


def test_runtime_reads_answer_503_when_the_engine_is_down(client: httpx.Client) -> None:
    _create(client, "no-engine")
    for path in ("logs", "metrics", "health"):
        answer = client.get(f"/api/agents/no-engine/{path}")
        assert answer.status_code == 503, (path, answer.text)
        assert answer.json()["error"] == "runtime unavailable"
    assert "tail" in _fields(client.get("/api/agents/no-engine/logs", params={"tail": "many"}))


def test_manifest_labels_show_and_filter_with_kubectls_selector(client: httpx.Client, gateway: ServerThread) -> None:
    """Labels set by a manifest (clawpen apply / kubectl) are in the answer and select with ?labelSelector=."""
    store = _store(gateway)
    for name, labels in (("lab-a", {"team": "fin", "tier": "gold"}), ("lab-b", {"team": "fin"}), ("lab-c", {})):
        doc = {"apiVersion": "clawpen.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name, "labels": labels}}
        gateway.call(store.create(Agent.model_validate(doc)))

    def names(selector: str) -> list[str]:
        answer = client.get("/api/agents", params={"labelSelector": selector})
        assert answer.status_code == 200, answer.text
        return [a["name"] for a in answer.json() if a["name"].startswith("lab-")]

    assert client.get("/api/agents/lab-a").json()["labels"] == {"team": "fin", "tier": "gold"}
    assert names("team=fin") == ["lab-a", "lab-b"]
    assert names("team=fin,tier") == ["lab-a"]
    assert names("team=fin,!tier") == ["lab-b"]
    assert names("team!=fin") == ["lab-c"]
    # The same grammar as the CLI's -l; a broken selector names the parameter.
    assert "labelSelector" in _fields(client.get("/api/agents", params={"labelSelector": "=x"}))
