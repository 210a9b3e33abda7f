"""Single sign-on in the dashboard, in real Chromium: the gateway (real HTTP, real files) and a real
OpenID provider (`oidc-provider` under node), no Docker needed.

The user clicks "Sign in with SSO", signs in on the provider's own pages, and lands on the dashboard
signed in as that user with the mapped role: no token ever in the address bar or history (the
callback hands over a one-time code in the fragment, which the page clears and trades by POST). A
viewer is offered no mutation controls and the gateway refuses the mutation anyway (403); an
operator is offered them; an unmapped user is told why on the sign-in page; with SSO off there is no
button.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.conftest import PASSWORD, login, start_gateway
from tests.api.harness import ServerThread
from tests.browser.conftest import shot
from tests.support.oidc_provider import sso_gateway

AGENT = "sso-visible"


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with sso_gateway(tmp_path_factory.mktemp("home"), "devs=operator,readers=viewer") as (gateway, provider):
        admin = {"Authorization": f"Bearer {login(gateway.url)['access_token']}"}
        created = httpx.post(f"{gateway.url}/api/agents", json={"name": AGENT}, headers=admin)
        assert created.status_code == 201, created.text
        yield {"gateway": gateway, "provider": provider}


def _page(browser: Any, gateway: ServerThread) -> Any:
    context = browser.new_context(base_url=gateway.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    return context.new_page()


def _sso_sign_in(page: Any, user: str) -> None:
    page.goto("/")
    form = page.get_by_role("form", name="Log in")
    expect(form).to_have_attribute("data-sso", "on")
    page.get_by_role("button", name="Sign in with SSO").click()
    page.locator("input[name=login]").fill(user)  # the provider's own sign-in page
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]").click()  # the provider's consent page


def test_viewer_signs_in_with_sso_and_is_offered_no_mutations(browser: Any, sso: dict[str, Any]) -> None:
    gateway = sso["gateway"]
    page = _page(browser, gateway)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    _sso_sign_in(page, "vera")
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    expect(page.locator("#who")).to_have_text("vera (viewer)")
    expect(page.locator("#live")).to_have_text("● live")
    # No token in the address bar, and the one-time code is gone from it (and from history).
    assert page.url.endswith("/#/"), page.url
    assert page.evaluate("history.length") >= 1 and "sso=" not in page.evaluate("location.href")
    assert not any("access_token" in url or "refresh_token" in url for url in seen), seen
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=AGENT, exact=True))
    expect(row).to_be_visible()
    expect(page.get_by_role("button", name="New agent")).to_be_hidden()
    expect(row.get_by_role("button", name=f"Start {AGENT}")).to_be_hidden()
    page.get_by_role("link", name=AGENT, exact=True).click()
    expect(page.get_by_role("heading", name=AGENT)).to_be_visible()
    for label in ("Start", "Stop", "Delete", "Edit"):
        expect(page.locator(".agent .toolbar").get_by_text(label, exact=True)).to_be_hidden()
    shot(page, "sso-viewer")
    # The gateway refuses it anyway: the page's own token, a DELETE by hand.
    status = page.evaluate(
        """async (name) => {
            const token = JSON.parse(sessionStorage.getItem("clawpen.session")).access;
            const headers = {Authorization: `Bearer ${token}`};
            return (await fetch(`/api/agents/${name}`, {method: "DELETE", headers})).status;
        }""",
        AGENT,
    )
    assert status == 403
    page.context.close()


def test_operator_signs_in_with_sso_and_is_offered_mutations(browser: Any, sso: dict[str, Any]) -> None:
    page = _page(browser, sso["gateway"])
    _sso_sign_in(page, "alice")
    expect(page.locator("#who")).to_have_text("alice (operator)")
    expect(page.get_by_role("button", name="New agent")).to_be_visible()
    page.context.close()


def test_unmapped_user_is_told_why(browser: Any, sso: dict[str, Any]) -> None:
    page = _page(browser, sso["gateway"])
    _sso_sign_in(page, "bob")
    expect(page.get_by_role("form", name="Log in").locator(".form-error")).to_contain_text("no role is mapped")
    assert "sso-error" not in page.url
    page.context.close()


def test_no_sso_button_when_it_is_not_configured(browser: Any, tmp_path: Any) -> None:
    with start_gateway(tmp_path) as gateway:
        page = _page(browser, gateway)
        page.goto("/")
        expect(page.get_by_role("form", name="Log in")).to_have_attribute("data-sso", "off")
        expect(page.get_by_role("button", name="Sign in with SSO")).to_be_hidden()
        # A user name and password still work (the admin: no user name).
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#who")).to_have_text("admin (admin)")
        expect(page.get_by_role("button", name="New agent")).to_be_visible()
        page.context.close()
