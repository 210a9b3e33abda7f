"""Users, API tokens, revocation and the audit log, over real HTTP and WebSockets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from controller.users.tokens import ApiTokenStore
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread

TEAM = """
[team]
id = "crew"
name = "crew"
[router]
mode = "keyword"
[agents]
main = { agent = "a1", description = "everything" }
[routing.main]
keywords = ["hello"]
"""
SECRET_VALUE = "sk-audit-must-never-see-this-4242"
USER_PASSWORD = "a user password 5678"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    teams = tmp_path_factory.mktemp("teams")
    (teams / "crew.toml").write_text(TEAM)
    gateway = start_gateway(home, teams_dir=teams, auth_recheck_seconds=0.3)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def admin(server: ServerThread) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
        assert c.post("/api/agents", json={"name": "a1", "project": "alpha", "state": "stopped"}).status_code == 201
        yield c


def _user(admin: httpx.Client, name: str, role: str = "operator") -> dict[str, Any]:
    answer = admin.post(
        "/api/users", json={"name": name, "password": USER_PASSWORD, "role": role, "projects": ["alpha"]}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _login(server: ServerThread, name: str, password: str = USER_PASSWORD) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/auth/login", json={"username": name, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_user_lifecycle(server: ServerThread, admin: httpx.Client) -> None:
    created = _user(admin, "carol", "viewer")
    assert created["role"] == "viewer" and created["projects"] == ["alpha"] and "password_hash" not in created
    assert USER_PASSWORD not in json.dumps(admin.get("/api/users").json())
    names = [u["name"] for u in admin.get("/api/users").json()]
    assert names[0] == "admin" and "carol" in names
    assert admin.post("/api/users", json={"name": "carol", "password": USER_PASSWORD}).status_code == 409
    assert admin.patch("/api/users/carol", json={"role": "operator"}).json()["role"] == "operator"
    assert admin.delete("/api/users/admin").status_code == 409
    assert admin.delete("/api/users/carol").status_code == 204
    assert admin.get("/api/users/carol").status_code == 404
    # No user name: the built-in admin, as before.
    assert httpx.post(f"{server.url}/auth/login", json={"password": "wrong"}).json()["error"] == "wrong password"


def test_concurrent_edits_conflict_instead_of_losing_one(admin: httpx.Client) -> None:
    version = _user(admin, "dave")["resource_version"]
    results: list[int] = []
    barrier = threading.Barrier(2)

    def edit(projects: list[str]) -> None:
        barrier.wait()
        answer = admin.patch("/api/users/dave", json={"projects": projects, "resource_version": version})
        results.append(answer.status_code)

    threads = [threading.Thread(target=edit, args=(p,)) for p in (["alpha"], ["beta"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]


def test_disabled_user_and_its_api_tokens_stop_at_once(server: ServerThread, admin: httpx.Client) -> None:
    _user(admin, "erin")
    access = _login(server, "erin")["access_token"]
    token = httpx.post(f"{server.url}/api/tokens", json={"name": "ci"}, headers=_bearer(access)).json()["token"]
    assert token.startswith("cpt_")
    for credential in (access, token):
        assert httpx.get(f"{server.url}/api/agents", headers=_bearer(credential)).status_code == 200
    assert admin.patch("/api/users/erin", json={"enabled": False}).status_code == 200
    for credential in (access, token):
        assert httpx.get(f"{server.url}/api/agents", headers=_bearer(credential)).status_code == 401
    answer = httpx.post(f"{server.url}/auth/login", json={"username": "erin", "password": USER_PASSWORD})
    assert answer.status_code == 401


def test_api_token_listed_revoked_and_stored_only_as_hash(
    home: Path, server: ServerThread, admin: httpx.Client
) -> None:
    made = admin.post("/api/tokens", json={"name": "gitops", "expires_in": 3600}).json()
    value = made["token"]
    assert httpx.get(f"{server.url}/api/agents", headers=_bearer(value)).status_code == 200
    listed = {t["name"]: t for t in admin.get("/api/tokens").json()}
    assert listed["gitops"]["last_used"] is not None and "token" not in listed["gitops"]
    assert value not in (home / "auth" / "api-tokens.json").read_text()
    assert admin.delete(f"/api/tokens/{made['id']}").status_code == 204
    assert httpx.get(f"{server.url}/api/agents", headers=_bearer(value)).status_code == 401


def test_api_token_expiry(tmp_path: Path) -> None:
    now = [1000.0]
    store = ApiTokenStore(tmp_path, clock=lambda: now[0])
    _, value = store.create("short", "admin", "viewer", ["*"], expires_in=60)
    assert store.lookup(value) is not None
    now[0] = 1060.0
    assert store.lookup(value) is None


async def _held_open(url: str, headers: dict[str, str], revoke: Any) -> int | None:
    """Open the team chat, revoke the credential, and return the close code the server sends."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert "error" not in welcome, welcome
        await asyncio.to_thread(revoke)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None


def test_open_websocket_closes_when_password_changes_or_user_is_disabled(
    server: ServerThread, admin: httpx.Client
) -> None:
    _user(admin, "frank")
    url = f"{server.ws_url}/api/teams/crew/chat"
    access = _login(server, "frank")["access_token"]
    change = lambda: admin.patch("/api/users/frank", json={"password": "another password 99"})  # noqa: E731
    assert asyncio.run(_held_open(url, _bearer(access), change)) == 4401
    access = _login(server, "frank", "another password 99")["access_token"]
    disable = lambda: admin.patch("/api/users/frank", json={"enabled": False})  # noqa: E731
    assert asyncio.run(_held_open(url, _bearer(access), disable)) == 4401


def test_refresh_reuse_stops_the_family_access_tokens_and_their_websockets(server: ServerThread) -> None:
    first = login(server.url)
    second = httpx.post(f"{server.url}/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()

    def reuse() -> None:
        answer = httpx.post(f"{server.url}/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert answer.status_code == 401

    code = asyncio.run(_held_open(f"{server.ws_url}/api/teams/crew/chat", _bearer(second["access_token"]), reuse))
    assert code == 4401
    assert httpx.get(f"{server.url}/api/agents", headers=_bearer(second["access_token"])).status_code == 401


def test_audit_log_answers_who_did_what_and_holds_no_secret(
    home: Path, server: ServerThread, admin: httpx.Client
) -> None:
    _user(admin, "gina")
    gina = _bearer(_login(server, "gina")["access_token"])
    assert (
        httpx.post(
            f"{server.url}/api/agents/a1/secrets", json={"name": "API_KEY", "value": SECRET_VALUE}, headers=gina
        ).status_code
        == 201
    )
    assert admin.post("/api/secrets", json={"name": "GLOBAL_KEY", "value": SECRET_VALUE}).status_code == 201
    token = admin.post("/api/tokens", json={"name": "audit-probe"}).json()["token"]
    assert (
        httpx.post(f"{server.url}/auth/login", json={"username": "gina", "password": "a wrong guess!!"}).status_code
        == 401
    )
    assert httpx.delete(f"{server.url}/api/agents/a1", headers=gina).status_code == 204
    entries = admin.get("/api/audit", params={"user": "gina"}).json()
    deleted = [e for e in entries if e["method"] == "DELETE" and e["route"] == "/api/agents/{id}"]
    assert deleted and deleted[-1]["object"] == "a1" and deleted[-1]["status"] == 204
    logins = [e for e in entries if e["route"] == "/auth/login"]
    assert {e["status"] for e in logins} >= {200, 401}
    assert set(entries[0]) == {"time", "user", "source", "method", "route", "object", "status"}
    everything = "".join(p.read_text() for p in (home / "audit").iterdir())
    for secret in (SECRET_VALUE, USER_PASSWORD, "a wrong guess!!", token, admin.headers["Authorization"][7:]):
        assert secret not in everything
    gina_sees = httpx.get(f"{server.url}/api/audit", headers=gina)
    assert gina_sees.status_code == 403 and gina_sees.json()["detail"]["missing_permission"] == "audit:read"
    assert admin.post("/api/agents", json={"name": "a1", "project": "alpha", "state": "stopped"}).status_code == 201


def test_audit_log_rotates_by_size(tmp_path: Path) -> None:
    from controller.users.audit import AuditLog

    log = AuditLog(tmp_path, max_bytes=2000, keep=3)
    for i in range(100):
        log.record(user="u", source="127.0.0.1", method="DELETE", route="/api/agents/{id}", object=f"a{i}", status=204)
    files = log.files()
    assert 2 <= len(files) <= 4 and all(p.stat().st_size < 2200 for p in files)
    assert [e["object"] for e in log.query(limit=2)] == ["a98", "a99"]


def test_rate_limited_logins_are_audited_with_the_user_tried(tmp_path: Path) -> None:
    with start_gateway(tmp_path) as gateway:
        codes = [
            httpx.post(f"{gateway.url}/auth/login", json={"username": "mallory", "password": "guess"}).status_code
            for _ in range(7)
        ]
        assert codes == [401] * 5 + [429] * 2
    lines = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    tried = [(e["user"], e["status"]) for e in lines if e["route"] == "/auth/login"]
    assert tried[:7] == [("mallory", 401)] * 5 + [("mallory", 429)] * 2
