"""Single sign-on end to end against a real OpenID provider (panva's `oidc-provider`, run with node).

The test plays the browser: gateway /auth/oidc/login -> provider login and consent forms ->
gateway /auth/oidc/callback -> our token pair. Tampering (state, nonce, a code minted for another
client, an ID token for another audience swapped into the token answer) and an unmapped user are
refused, by our callback. The dashboard's path (`?client=dashboard`) gets a one-time code in a URL
fragment, traded once by POST from the same browser; tokens never appear in a URL.
deploy/host/ensure-oidc-provider.sh installs the provider (tests/support/oidc_provider.py runs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.api.conftest import start_gateway
from tests.api.harness import ServerThread
from tests.support.oidc_provider import drive, sso_gateway


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    role_map = "devs=operator:alpha,admins=admin,readers=viewer"
    with sso_gateway(tmp_path_factory.mktemp("home"), role_map) as (gateway, provider):
        yield {"gateway": gateway, "issuer": provider.issuer, "provider": provider}


def _sign_in(
    gateway: ServerThread, user: str, tamper: Any = None, query: str = "", browser: httpx.Client | None = None
) -> httpx.Response:
    """Drive the browser's part; `tamper = (step, url -> url)` may change the URL at that step."""
    browser = browser or httpx.Client(timeout=30, follow_redirects=False)
    answer = browser.get(f"{gateway.url}/auth/oidc/login{query}")
    assert answer.status_code == 302, answer.text
    url = answer.headers["location"]
    if tamper and tamper[0] == "authorize":
        url = tamper[1](url)
    url = drive(browser, url, user, stop_at=gateway.url)
    if tamper and tamper[0] == "callback":
        url = tamper[1](url)
    return browser.get(url)


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


def test_id_token_for_another_audience_is_refused_by_us(sso: dict[str, Any]) -> None:
    """The provider's real, correctly signed ID token for client `intruder` (same user, same nonce,
    same issuer) is swapped into the token answer our callback receives: only `aud` is wrong, and
    our check, not the provider's, refuses it."""
    gateway, provider = sso["gateway"], sso["provider"]

    def swap_in_foreign_token(url: str) -> str:
        provider.swap = provider.token_for_another_client(url, "alice")
        return url

    answer = _sign_in(gateway, "alice", ("authorize", swap_in_foreign_token))
    assert provider.swap is None, "the token endpoint was never called"
    assert answer.status_code == 400, answer.text
    assert "meant for another client" in answer.json()["error"] and "'clawpen'" in answer.json()["error"]
    assert "access_token" not in answer.text


def _fragment(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/#") and "?" not in location, location
    return {k: v[0] for k, v in parse_qs(location.split("#", 1)[1]).items()}


def test_dashboard_gets_a_one_time_code_in_the_fragment_not_tokens(sso: dict[str, Any]) -> None:
    gateway = sso["gateway"]
    browser = httpx.Client(timeout=30, follow_redirects=False)
    answer = _sign_in(gateway, "vera", query="?client=dashboard", browser=browser)
    code = _fragment(answer)["sso"]
    assert "token" not in answer.headers["location"] and "eyJ" not in answer.headers["location"]
    # Another browser (no session cookie) cannot trade the code, even a correct one.
    stranger = httpx.post(f"{gateway.url}/auth/oidc/exchange", json={"code": code})
    assert stranger.status_code == 400 and "another browser" in stranger.json()["error"]
    traded = browser.post(f"{gateway.url}/auth/oidc/exchange", json={"code": code})
    assert traded.status_code == 200, traded.text
    assert traded.headers["cache-control"] == "no-store"
    tokens = traded.json()
    me = httpx.get(f"{gateway.url}/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["name"] == "vera" and me.json()["role"] == "viewer"
    assert "agents:write" not in me.json()["permissions"]
    again = browser.post(f"{gateway.url}/auth/oidc/exchange", json={"code": code})
    assert again.status_code == 400  # single use


def test_dashboard_refusal_comes_back_to_the_dashboard(sso: dict[str, Any]) -> None:
    answer = _sign_in(sso["gateway"], "bob", query="?client=dashboard")
    assert "no role is mapped" in _fragment(answer)["sso-error"]


def test_handoff_codes_expire() -> None:
    from api.auth import TokenPair
    from api.sso_handoff import Handoffs

    handoffs = Handoffs(ttl=0.0)
    code, digest = handoffs.put(TokenPair(access_token="a", refresh_token="r", expires_in=1))
    assert handoffs.take(code, digest) is None
    fresh = Handoffs()
    code, digest = fresh.put(TokenPair(access_token="a", refresh_token="r", expires_in=1))
    assert fresh.take(code, "0" * 64) is None  # not bound to this browser
    assert fresh.take(code, digest) is not None and fresh.take(code, digest) is None
