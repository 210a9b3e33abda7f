"""System routes over HTTP: public health and metrics, catalog, runtime status, JSON errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from controller import __version__
from controller.warm_pool.status import PoolStatus, save_report, status_path
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread
from tests.support.templates import POOLED, templates_with


def test_health_is_public(gateway: ServerThread) -> None:
    answer = httpx.get(gateway.url + "/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "version": __version__}


def test_templates_and_providers_come_from_the_catalog(client: httpx.Client, gateway: ServerThread) -> None:
    catalog = gateway.app.state.deps.catalog
    templates = client.get("/api/templates").json()
    assert [t["id"] for t in templates] == sorted(catalog.templates)
    providers = client.get("/api/providers").json()
    assert [p["id"] for p in providers] == sorted(catalog.providers)
    assert httpx.get(gateway.url + "/api/templates").status_code == 401


def test_runtime_status_reports_an_unreachable_engine(client: httpx.Client) -> None:
    client.post("/api/agents", json={"name": "counted"})
    body = client.get("/api/runtime/status").json()
    assert body["runtime"] == "docker" and body["available"] is False and "Docker engine" in body["error"]
    assert body["agents_total"] >= 1 and body["agents_running"] == 0
    assert body["store"] and body["instance"].startswith("t-")


def test_usage_metrics_503_when_engine_down_with_running_agents(client: httpx.Client, gateway: ServerThread) -> None:
    from controller.resources import Agent, AgentStatus, Phase

    client.post("/api/agents", json={"name": "busy"})
    gateway.call(gateway.app.state.deps.store.update_status(Agent, "busy", AgentStatus(phase=Phase.RUNNING)))
    answer = client.get("/api/metrics")
    assert answer.status_code == 503 and answer.json()["error"] == "runtime unavailable"


def test_prometheus_metrics_are_public_and_count_by_route_template(client: httpx.Client, gateway: ServerThread) -> None:
    client.get("/api/agents/some-agent-name")
    client.get("/api/agents/another-name")
    httpx.get(gateway.url + "/api/agents/unauthorized-one")
    text = httpx.get(gateway.url + "/metrics").text
    assert 'clawpen_http_requests_total{code="404",method="GET",route="/api/agents/{id}"}' in text
    assert 'clawpen_http_requests_total{code="401",method="GET",route="/api/agents/{id}"}' in text
    assert "some-agent-name" not in text
    assert "clawpen_agents{phase=" in text
    assert "clawpen_reconcile_seconds_bucket" in text  # the controller's metrics share the registry


def test_unknown_path_and_wrong_method_are_json(gateway: ServerThread, client: httpx.Client) -> None:
    missing = httpx.get(gateway.url + "/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    wrong = client.patch("/api/agents")
    assert wrong.status_code == 405 and set(wrong.json()) == {"error", "detail"}


def test_oversized_body_is_refused(client: httpx.Client) -> None:
    answer = client.post("/api/agents", content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/json" and answer.json()["error"] == "request body too large"


def test_oversized_streamed_body_is_refused_as_json(client: httpx.Client) -> None:
    def chunks():  # no Content-Length: the limit trips while reading
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    answer = client.post("/api/agents", content=chunks())
    assert answer.status_code == 413 and answer.headers["content-type"] == "application/json" and answer.json()["error"]


def test_templates_show_their_warm_pool_as_the_controller_reported_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_gateway(home, templates_dir=templates_with(tmp_path / "templates", pooled=POOLED))
    try:
        headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:

            def entries() -> dict[str, Any]:
                answer = client.get("/api/templates")
                assert answer.status_code == 200
                return {t["id"]: t for t in answer.json()}

            before = entries()
            assert before["pooled"]["warm_pool"] == {
                "size": 2,
                "ready": 0,
                "starting": 0,
                "enabled": False,
                "reason": "no report from the controller yet: is it running?",
            }
            assert all("warm_pool" not in t for name, t in before.items() if name != "pooled")
            save_report(status_path(home), {"pooled": PoolStatus(2, ready=1, starting=1)})  # what the pool task writes
            pool = entries()["pooled"]["warm_pool"]
            assert (pool["size"], pool["ready"], pool["starting"], pool["enabled"]) == (2, 1, 1, True)
            assert pool["reason"] is None
    finally:
        server.stop()
