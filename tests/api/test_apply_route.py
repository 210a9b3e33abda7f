"""POST /api/apply's own rules, beyond the guard (real gateway, real HTTP): the caller's projects, a
Team needing every project, spec.image for admins only, the gateway's namespace, and the store-owned
parts of a document (status, metadata.uid, ...) ignored rather than written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.harness import ServerThread

PASSWORD = "payments operator pw"


def _agent(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "clawpen.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def pat(gateway: ServerThread, client: httpx.Client) -> httpx.Client:
    """An operator granted only the project `payments`."""
    made = client.post("/api/users", json={"name": "pat", "password": PASSWORD, "role": "operator",
                                           "projects": ["payments"]})  # fmt: skip
    assert made.status_code == 201, made.text
    tokens = httpx.post(f"{gateway.url}/auth/login", json={"username": "pat", "password": PASSWORD}).json()
    return httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {tokens['access_token']}"})


def test_an_operator_applies_only_in_its_projects(client: httpx.Client, pat: httpx.Client) -> None:
    made = pat.post("/api/apply", json=_agent("pay-one", project="payments", state="Stopped"))
    assert made.status_code == 200 and made.json()["result"] == "created", made.text
    elsewhere = pat.post("/api/apply", json=_agent("pay-two", project="search"))
    assert elsewhere.status_code == 403 and elsewhere.json()["detail"]["project"] == "search"
    # moving an agent out of the caller's project needs that project too
    assert client.post("/api/apply", json=_agent("srch", project="search", state="Stopped")).status_code == 200
    taken = pat.post("/api/apply", json=_agent("srch", project="payments", state="Stopped"))
    assert taken.status_code == 403 and client.get("/api/agents/srch").json()["project"] == "search"
    team = {"apiVersion": "clawpen.dev/v1alpha1", "kind": "Team", "metadata": {"name": "payteam"},
            "spec": {"agents": {"main": {"agent": "pay-one"}}}}  # fmt: skip
    refused = pat.post("/api/apply", json=team)
    assert refused.status_code == 403 and refused.json()["detail"]["missing_permission"] == "teams:write"
    assert client.post("/api/apply", json=team).json()["result"] == "created"  # the admin may


def test_image_is_for_admins_and_store_fields_are_ignored(client: httpx.Client, pat: httpx.Client) -> None:
    image = pat.post("/api/apply", json=_agent("pay-img", project="payments", image="evil/miner:1"))
    assert image.status_code == 403 and "spec.image" in image.json()["error"]
    assert client.get("/api/agents/pay-img").status_code == 404
    doc = _agent("pay-st", project="payments", state="Stopped")
    doc["metadata"].update(uid="forged", resourceVersion="999", namespace="default")
    doc["status"] = {"phase": "Running", "endpoint": "http://169.254.169.254/"}
    assert pat.post("/api/apply", json=doc).json()["result"] == "created"
    stored = client.get("/api/agents/pay-st").json()
    assert stored["endpoint"] is None and stored["status"] == "pending" and stored["resource_version"] != "999"
    other = _agent("pay-ns", project="payments")
    other["metadata"]["namespace"] = "prod"
    wrong = pat.post("/api/apply", json=other)
    assert wrong.status_code == 422 and "namespace" in wrong.text


def test_dry_run_writes_nothing_and_bad_documents_are_422(client: httpx.Client) -> None:
    dry = client.post("/api/apply", params={"dryRun": "true"}, json=_agent("dry-one"))
    assert dry.json() == {"kind": "Agent", "name": "dry-one", "result": "created", "dry_run": True}
    assert client.get("/api/agents/dry-one").status_code == 404
    bad = client.post("/api/apply", json=_agent("bad-mem", resources={"memoryMB": "lots"}))
    assert bad.status_code == 422 and "memoryMB" in bad.json()["error"]
    kind = client.post("/api/apply", json={**_agent("x"), "kind": "Pod"})
    assert kind.status_code == 422
