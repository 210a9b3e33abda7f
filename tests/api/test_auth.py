"""Authentication through the real server: tokens, every refusal the issue lists, files on disk."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.auth import PasswordRuleError
from tests.api.conftest import PASSWORD, login, start_gateway
from tests.api.harness import ServerThread


def _home(gateway: ServerThread) -> Path:
    return gateway.app.state.deps.settings.home


def _key(gateway: ServerThread) -> bytes:
    return bytes.fromhex((_home(gateway) / "auth" / "jwt.key").read_text().strip())


def _get(gateway: ServerThread, token: str | None, path: str = "/api/agents") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(gateway.url + path, headers=headers)


def _refresh(gateway: ServerThread, token: str, path: str = "/auth/refresh") -> httpx.Response:
    return httpx.post(gateway.url + path, json={"refresh_token": token})


def _refused(answer: httpx.Response, words: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    body = answer.json()
    assert words in body["error"], body
    assert set(body) == {"error", "detail"}


def test_key_and_password_hash_are_private_files(gateway: ServerThread) -> None:
    auth_dir = _home(gateway) / "auth"
    for name in ("jwt.key", "admin.argon2"):
        mode = stat.S_IMODE((auth_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert stat.S_IMODE(auth_dir.stat().st_mode) == 0o700
    assert len(_key(gateway)) == 32
    stored = (auth_dir / "admin.argon2").read_text()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_status_reports_configuration(gateway: ServerThread) -> None:
    answer = httpx.get(gateway.url + "/auth/status")
    assert answer.json() == {
        "auth_enabled": True,
        "has_admin": True,
        "registration_enabled": False,
        "sso_enabled": False,
    }


def test_login_returns_bearer_pair_with_seed_lifetimes(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 24 * 3600
    access = jwt.decode(tokens["access_token"], _key(gateway), algorithms=["HS256"])
    refresh = jwt.decode(tokens["refresh_token"], _key(gateway), algorithms=["HS256"])
    assert access["type"] == "access" and access["exp"] - access["iat"] == 24 * 3600
    assert refresh["type"] == "refresh" and refresh["exp"] - refresh["iat"] == 7 * 24 * 3600
    assert _get(gateway, tokens["access_token"]).status_code == 200


def test_no_token_is_refused(gateway: ServerThread) -> None:
    _refused(_get(gateway, None), "missing access token")
    _refused(httpx.get(gateway.url + "/api/agents", headers={"Authorization": "Basic YWRtaW46eA=="}), "missing")


def test_tampered_signature_is_refused(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    header, payload, signature = tokens["access_token"].split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    _refused(_get(gateway, f"{header}.{payload}.{flipped}"), "signature")


def test_tampered_claims_are_refused(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    header, payload, signature = tokens["refresh_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["type"] = "access"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _refused(_get(gateway, f"{header}.{forged}.{signature}"), "signature")


def test_alg_none_is_refused(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    _refused(_get(gateway, unsigned), "HS256")


def test_token_signed_with_another_key_is_refused(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    _refused(_get(gateway, jwt.encode(claims, b"k" * 32, algorithm="HS256")), "signature")


def test_expired_token_is_refused(gateway: ServerThread) -> None:
    now = int(time.time())
    claims = {
        "iss": "clawpen",
        "sub": "admin",
        "type": "access",
        "jti": "x",
        "iat": now - 7200,
        "exp": now - 60,
    }
    _refused(_get(gateway, jwt.encode(claims, _key(gateway), algorithm="HS256")), "expired")


def test_refresh_token_is_not_an_access_token(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    _refused(_get(gateway, tokens["refresh_token"]), "refresh token cannot be used as a access")


def test_access_token_is_not_a_refresh_token(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    _refused(_refresh(gateway, tokens["access_token"]), "access token cannot be used as a refresh")


def test_refresh_rotates_and_a_used_token_is_refused(gateway: ServerThread) -> None:
    first = login(gateway.url)
    answer = _refresh(gateway, first["refresh_token"], "/api/auth/refresh")  # where the original client calls
    assert answer.status_code == 200, answer.text
    second = answer.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _get(gateway, second["access_token"]).status_code == 200
    _refused(_refresh(gateway, first["refresh_token"]), "already used")
    # The reuse revoked the whole chain, including the token the reuser's victim holds now,
    # and the access tokens minted from it (issue 10, item 10).
    _refused(_refresh(gateway, second["refresh_token"]), "revoked")
    for access in (first["access_token"], second["access_token"]):
        assert _get(gateway, access).status_code == 401


def test_used_refresh_token_stays_refused_after_restart(tmp_path: Path) -> None:
    with start_gateway(tmp_path) as first_run:
        pair = login(first_run.url)
        assert _refresh(first_run, pair["refresh_token"]).status_code == 200
        other = login(first_run.url)
    with start_gateway(tmp_path, env={}) as second_run:
        # Tokens are still valid across the restart (same key file).
        assert _get(second_run, pair["access_token"]).status_code == 200
        _refused(_refresh(second_run, pair["refresh_token"]), "already used")
        # ...until the reuse revoked their family; another session's family is untouched.
        assert _get(second_run, pair["access_token"]).status_code == 401
        assert _get(second_run, other["access_token"]).status_code == 200


def test_wrong_password_is_401(gateway: ServerThread) -> None:
    answer = httpx.post(gateway.url + "/auth/login", json={"password": "not the password"})
    assert answer.status_code == 401 and answer.json()["error"] == "wrong password"
    assert "not the password" not in answer.text


def test_login_body_errors(gateway: ServerThread) -> None:
    assert httpx.post(gateway.url + "/auth/login", content=b"{nope").status_code == 400
    answer = httpx.post(gateway.url + "/auth/login", json={"pass": "x"})
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["detail"]} == {"password", "pass"}


def test_login_rate_limit_429_with_retry_after(tmp_path: Path) -> None:
    with start_gateway(tmp_path) as server:
        for _ in range(5):
            assert httpx.post(server.url + "/auth/login", json={"password": "wrong guess!!"}).status_code == 401
        answer = httpx.post(server.url + "/auth/login", json={"password": PASSWORD})
        assert answer.status_code == 429, answer.text
        assert 1 <= int(answer.headers["retry-after"]) <= 60
        assert "too many" in answer.json()["error"]


def test_registration_is_off_by_default(gateway: ServerThread) -> None:
    answer = httpx.post(gateway.url + "/auth/register", json={"password": "a brand new password"})
    assert answer.status_code == 403 and "clawpen admin set-password" in answer.json()["error"]


def test_registration_when_enabled_sets_the_password_once(tmp_path: Path) -> None:
    with start_gateway(tmp_path, env={}, registration_enabled=True) as server:
        assert httpx.get(server.url + "/auth/status").json()["has_admin"] is False
        answer = httpx.post(server.url + "/auth/login", json={"password": PASSWORD})
        assert answer.status_code == 403 and "set-password" in answer.json()["error"]
        short = httpx.post(server.url + "/auth/register", json={"password": "short"})
        assert short.status_code == 422 and short.json()["detail"][0]["field"] == "password"
        created = httpx.post(server.url + "/auth/register", json={"password": PASSWORD})
        assert created.status_code == 201 and _get(server, created.json()["access_token"]).status_code == 200
        again = httpx.post(server.url + "/auth/register", json={"password": "someone else's pass"})
        assert again.status_code == 409
        assert login(server.url)["token_type"] == "Bearer"


def test_short_bootstrap_password_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(PasswordRuleError, match="CLAWPEN_ADMIN_PASSWORD: password must be at least 12"):
        start_gateway(tmp_path, env={"CLAWPEN_ADMIN_PASSWORD": "short"})


def test_websocket_without_token_gets_4401(gateway: ServerThread) -> None:
    with connect(f"{gateway.ws_url}/api/agents/anything/chat") as ws:
        frame = json.loads(ws.recv(timeout=5))
        assert frame["role"] == "system" and frame["error"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_websocket_with_refresh_token_gets_4401(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    with connect(f"{gateway.ws_url}/api/agents/anything/chat?token={tokens['refresh_token']}") as ws:
        assert "refresh token" in json.loads(ws.recv(timeout=5))["content"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_a_new_admin_password_ends_existing_sessions(tmp_path: Path) -> None:
    from api.auth import AdminPassword

    with start_gateway(tmp_path) as server:
        before = login(server.url)
        assert _get(server, before["access_token"]).status_code == 200
        AdminPassword(tmp_path).set("a different password")  # what `clawpen admin set-password` does
        _refused(_get(server, before["access_token"]), "password changed")
        _refused(_refresh(server, before["refresh_token"]), "password changed")
        after = login(server.url, "a different password")
        assert _get(server, after["access_token"]).status_code == 200
