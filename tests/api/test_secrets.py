"""Secrets over real HTTP: values go in, never come out (bodies, errors, files), scoping, 422 rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.harness import ServerThread

VALUE = "sk-test-4f9a1c2e-value-that-must-never-leak"


def _home(gateway: ServerThread) -> Path:
    return gateway.app.state.deps.settings.home  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def agents(client: httpx.Client) -> list[str]:
    for name in ("sec-a", "sec-b"):
        answer = client.post("/api/agents", json={"name": name})
        assert answer.status_code == 201, answer.text
    return ["sec-a", "sec-b"]


def _names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [s["name"] for s in answer.json()]


def test_agent_secret_lifecycle_never_returns_the_value(
    client: httpx.Client, gateway: ServerThread, agents: list[str]
) -> None:
    created = client.post("/api/agents/sec-a/secrets", json={"name": "OPENAI_API_KEY", "value": VALUE})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "OPENAI_API_KEY" and body["scope"] == "agent" and body["agent"] == "sec-a"
    assert body["size_bytes"] == len(VALUE) and body["created_at"] and body["version"]
    assert VALUE not in created.text

    listing = client.get("/api/agents/sec-a/secrets")
    assert _names(listing) == ["OPENAI_API_KEY"]
    assert VALUE not in listing.text
    assert set(listing.json()[0]) >= {"name", "created_at", "size_bytes"}

    again = client.post("/api/agents/sec-a/secrets", json={"name": "OPENAI_API_KEY", "value": VALUE + "2"})
    assert again.status_code == 201 and again.json()["version"] != body["version"]

    stored = b"".join(p.read_bytes() for p in (_home(gateway) / "secrets").rglob("*") if p.is_file())
    assert VALUE.encode() not in stored

    assert client.delete("/api/agents/sec-a/secrets/OPENAI_API_KEY").status_code == 204
    assert client.delete("/api/agents/sec-a/secrets/OPENAI_API_KEY").status_code == 404
    assert _names(client.get("/api/agents/sec-a/secrets")) == []


def test_global_secrets_and_scoping(client: httpx.Client, gateway: ServerThread, agents: list[str]) -> None:
    assert client.post("/api/secrets", json={"name": "SHARED", "value": "global-v"}).status_code == 201
    assert client.post("/api/agents/sec-a/secrets", json={"name": "SHARED", "value": "a-v"}).status_code == 201
    assert "SHARED" in _names(client.get("/api/secrets"))
    assert _names(client.get("/api/agents/sec-b/secrets")) == []  # B never sees A's
    store = gateway.app.state.secret_store
    resolved = store.resolve("sec-b", ["SHARED"])
    assert resolved["SHARED"].scope == "global" and store.read(resolved["SHARED"]) == b"global-v"
    assert store.read(store.resolve("sec-a", ["SHARED"])["SHARED"]) == b"a-v"
    assert client.delete("/api/secrets/SHARED").status_code == 204
    assert "SHARED" not in _names(client.get("/api/secrets"))


@pytest.mark.parametrize("name", ["../etc/passwd", "..", "a/b", "", "x" * 65, "bad name"])
def test_bad_names_are_422_naming_the_rule(client: httpx.Client, agents: list[str], name: str) -> None:
    answer = client.post("/api/agents/sec-a/secrets", json={"name": name, "value": VALUE})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == "name"
    assert "[A-Za-z0-9_.-]{1,64}" in answer.text
    assert VALUE not in answer.text


def test_value_limits_are_422_without_echo(client: httpx.Client, agents: list[str]) -> None:
    big = "v" * (64 * 1024 + 1)
    answer = client.post("/api/secrets", json={"name": "BIG", "value": big})
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "value"
    assert "64 KiB" in answer.text and big not in answer.text
    ok = client.post("/api/secrets", json={"name": "BIG", "value": "v" * 64 * 1024})
    assert ok.status_code == 201
    empty = client.post("/api/secrets", json={"name": "E", "value": ""})
    assert empty.status_code == 422
    wrong_type: Any = client.post("/api/secrets", json={"name": "T", "value": {"nested": VALUE}})
    assert wrong_type.status_code == 422 and VALUE not in wrong_type.text
    extra = client.post("/api/secrets", json={"name": "T", "value": "x", "other": 1})
    assert extra.status_code == 422


def test_unknown_agent_is_404(client: httpx.Client) -> None:
    assert client.get("/api/agents/nobody/secrets").status_code == 404
    assert client.post("/api/agents/nobody/secrets", json={"name": "K", "value": "v"}).status_code == 404
    assert client.get("/api/agents/..%2F..%2Fetc/secrets").status_code == 404


def test_secrets_need_a_token(gateway: ServerThread) -> None:
    assert httpx.get(f"{gateway.url}/api/secrets").status_code == 401
    assert httpx.post(f"{gateway.url}/api/secrets", json={"name": "K", "value": "v"}).status_code == 401
