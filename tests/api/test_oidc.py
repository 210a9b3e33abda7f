"""Single sign-on end to end against a real OpenID provider (panva's `oidc-provider`, run with node).

The test plays the browser: gateway /auth/oidc/login -> provider login and consent forms ->
gateway /auth/oidc/callback -> our token pair. Tampering (state, nonce, a code minted for another
client) and an unmapped user are refused. deploy/host/ensure-oidc-provider.sh installs the provider.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.api.conftest import start_gateway
from tests.api.harness import ServerThread

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = Path(
    os.environ.get("CLAWPEN_OIDC_PROVIDER_DIR") or Path.home() / ".cache" / "clawpen" / "oidc-provider"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if shutil.which("node") is None:
        pytest.fail("node is required for the SSO test (a real OpenID provider)")
    subprocess.run(["bash", str(ROOT / "deploy/host/ensure-oidc-provider.sh")], check=True, timeout=600)
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    gateway = start_gateway(
        tmp_path_factory.mktemp("home"),
        oidc_issuer=issuer,
        oidc_client_id="clawpen",
        oidc_client_secret="clawpen-secret-for-tests-only",
        oidc_role_map="devs=operator:alpha,admins=admin",
    )
    redirect = f"{gateway.url}/auth/oidc/callback"
    provider = subprocess.Popen(
        ["node", str(ROOT / "tests/api/oidc/provider.mjs"), str(port), redirect],
        env={**os.environ, "CLAWPEN_OIDC_PROVIDER_DIR": str(PROVIDER_DIR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert provider.stdout is not None
    seen: list[str] = []
    while "ready" not in seen and len(seen) < 20:  # warnings (node version, dev forms) come first
        seen.append(provider.stdout.readline().strip())
    assert "ready" in seen, seen
    yield {"gateway": gateway, "issuer": issuer}
    provider.terminate()
    provider.wait(10)
    gateway.stop()


def _form(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action, html[:500]
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    return action.group(1), fields


def _sign_in(gateway: ServerThread, user: str, tamper: Any = None) -> httpx.Response:
    """Drive the browser's part; `tamper(url) -> url` may change the URL at the named step."""
    browser = httpx.Client(timeout=30, follow_redirects=False)
    answer = browser.get(f"{gateway.url}/auth/oidc/login")
    assert answer.status_code == 302, answer.text
    url = answer.headers["location"]
    if tamper and tamper[0] == "authorize":
        url = tamper[1](url)
    for _ in range(20):
        if url.startswith(gateway.url):
            if tamper and tamper[0] == "callback":
                url = tamper[1](url)
            return browser.get(url)
        answer = browser.get(url)
        if answer.status_code in (302, 303):
            url = str(answer.url.join(answer.headers["location"]))
            continue
        assert answer.status_code == 200, answer.text[:500]
        action, fields = _form(answer.text)
        if fields.get("prompt") == "login":
            fields.update({"login": user, "password": "anything"})
        answer = browser.post(str(answer.url.join(action)), data=fields)
        assert answer.status_code in (302, 303), answer.text[:500]
        url = str(answer.url.join(answer.headers["location"]))
    raise AssertionError("the sign-in never reached the callback")


def _set_param(name: str, value: str) -> Any:
    def change(url: str) -> str:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query[name] = value
        return urlunsplit(parts._replace(query=urlencode(query)))

    return change


def test_sign_in_creates_the_mapped_user_and_returns_our_tokens(sso: dict[str, Any]) -> None:
    gateway = sso["gateway"]
    answer = _sign_in(gateway, "alice")
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(f"{gateway.url}/api/agents", headers=headers).status_code == 200
    assert httpx.get(f"{gateway.url}/api/users", headers=headers).status_code == 403  # an operator, not admin
    refreshed = httpx.post(f"{gateway.url}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    root = _sign_in(gateway, "root").json()
    users = httpx.get(f"{gateway.url}/api/users", headers={"Authorization": f"Bearer {root['access_token']}"})
    alice = next(u for u in users.json() if u["name"] == "alice")
    assert alice["role"] == "operator" and alice["projects"] == ["alpha"] and alice["source"] == "oidc"


def test_unmapped_user_is_refused(sso: dict[str, Any]) -> None:
    answer = _sign_in(sso["gateway"], "bob")
    assert answer.status_code == 403 and "no role is mapped" in answer.json()["error"]


def test_tampered_state_is_refused(sso: dict[str, Any]) -> None:
    answer = _sign_in(sso["gateway"], "alice", ("callback", _set_param("state", "forged-state")))
    assert answer.status_code == 400 and "refused" in answer.json()["error"]


def test_tampered_nonce_is_refused(sso: dict[str, Any]) -> None:
    answer = _sign_in(sso["gateway"], "alice", ("authorize", _set_param("nonce", "attacker-chosen-nonce")))
    assert answer.status_code == 400 and "nonce" in answer.json()["error"].lower()


def test_code_for_another_client_is_refused(sso: dict[str, Any]) -> None:
    """A code (and ID token audience) minted for client `intruder` must not log anyone in here."""
    answer = _sign_in(sso["gateway"], "alice", ("authorize", _set_param("client_id", "intruder")))
    assert answer.status_code == 400, answer.text


def test_sso_not_configured_is_404(tmp_path: Path) -> None:
    with start_gateway(tmp_path) as gateway:
        assert httpx.get(f"{gateway.url}/auth/oidc/login").status_code == 404
