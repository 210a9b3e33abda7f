"""The dashboard in real Chromium against a real `clawpen up` and the real Docker engine.

One story, in order, as a new user lives it: log in, fail a form on the right field, create an
agent through the form and watch it become running without reloading, chat (streamed), follow its
logs, stop and start it from the fleet, classify and chat with a team, log out. Nothing is waited
for with sleeps: each step waits for what the page shows (the watch stream drives it).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, ROOT, shot, ws_chat

pytestmark = pytest.mark.docker
RUNNING_TIMEOUT = 90_000  # ms: image already built; a container start takes a second or two


def _row(page: Any, name: str) -> Any:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))


def test_login(page: Any, up: dict[str, str]) -> None:
    page.goto("/")
    page.get_by_label("Password").fill("wrong password here")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".field[data-field=password] .field-error")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    expect(page.locator("#live")).to_have_text("● live")
    # The token is in sessionStorage and never in the address bar.
    assert "token" not in page.url and json.loads(page.evaluate("sessionStorage.getItem('clawpen.session')"))["access"]


def test_validation_errors_show_on_the_fields_they_name(page: Any, up: dict[str, str]) -> None:
    page.get_by_role("button", name="New agent").click()
    form = page.get_by_role("form", name="New agent")
    expect(form).to_have_attribute("data-ready", "true")
    page.get_by_label("Name").fill("bad-memory")
    page.get_by_label("Memory (MB)").fill("0")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_label("Memory (MB)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field[data-field='config.memory_mb'] .field-error")).not_to_be_empty()
    expect(page.get_by_label("Name")).not_to_have_attribute("aria-invalid", "true")

    page.get_by_label("Memory (MB)").fill("")
    page.get_by_label("Name").fill("Not_A_DNS_Name")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field[data-field=name] .field-error")).to_contain_text("lowercase")
    expect(page.get_by_label("Memory (MB)")).not_to_have_attribute("aria-invalid", "true")
    shot(page, "validation")


def test_create_through_the_form_and_watch_it_run(page: Any, up: dict[str, str]) -> None:
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.get_by_label("Name").fill(up["finn"])
    page.get_by_label("Template").select_option("local-assistant")
    page.get_by_label("Provider").select_option("ollama")
    page.get_by_label("Model").fill("fake-1")
    page.get_by_label("Base URL").fill(up["model_url"])
    page.get_by_label("Memory (MB)").fill("256")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name=up["finn"])).to_be_visible()
    badge = page.locator(".agent h1 .phase")
    expect(badge).to_have_text("running", timeout=RUNNING_TIMEOUT)
    assert page.evaluate("window.__sameDocument") is True
    page.get_by_role("link", name="Fleet", exact=True).first.click()
    row = _row(page, up["finn"])
    expect(row).to_contain_text("running")
    expect(row).to_contain_text("ollama / fake-1")
    expect(row).to_contain_text("Ready: ")
    expect(row.locator("td.mono")).to_contain_text("http://127.0.0.1:")
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "fleet")


def test_chat_shows_a_streamed_reply(page: Any, up: dict[str, str]) -> None:
    page.goto(f"/#/agents/{up['finn']}/chat")
    expect(page.get_by_text("Connected.")).to_be_visible()
    page.get_by_label("Message", exact=True).fill("hello from the browser")
    page.get_by_role("button", name="Send").click()
    # First a growing reply (the stream), then the finished one.
    expect(page.locator(".msg.assistant.streaming")).to_be_visible()
    done = page.locator(".msg.assistant[data-done=true]")
    expect(done).to_have_text(f"{up['finn']} heard: hello from the browser", timeout=30_000)
    shot(page, "chat")


def test_logs_stream_live(page: Any, up: dict[str, str]) -> None:
    page.get_by_role("link", name="Logs").click()
    lines = page.get_by_role("log", name="Log lines")
    expect(lines.locator("li").first).to_be_visible()
    token = json.loads(page.evaluate("sessionStorage.getItem('clawpen.session')"))["access"]
    frames = ws_chat(up["url"], token, up["finn"], "anything for the log", "logcheck")
    assert frames[-1].get("done"), frames
    expect(lines).to_contain_text("chat session=logcheck", timeout=20_000)


def test_every_agent_tab_renders(page: Any, up: dict[str, str]) -> None:
    name = up["finn"]
    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Conditions")).to_be_visible()
    expect(page.locator(".overview")).to_contain_text("Ready")
    expect(page.get_by_role("heading", name="Recent events")).to_be_visible()
    expect(page.get_by_text("Healthy: /healthz answers.")).to_be_visible()
    page.get_by_role("link", name="Metrics").click()
    expect(page.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"Memory [\d.]+ MB of 256 MB"))
    page.get_by_role("link", name="Snapshots").click()
    expect(page.get_by_text("No snapshots.")).to_be_visible()
    page.get_by_role("link", name="Secrets").click()
    page.get_by_label("Secret name").fill("UI_TOKEN")
    page.get_by_label("Value").fill("never shown again")
    page.get_by_role("button", name="Set secret").click()
    expect(page.get_by_role("cell", name="UI_TOKEN")).to_be_visible()
    assert "never shown again" not in page.content()
    page.get_by_role("link", name="Edit").click()
    form = page.get_by_role("form", name=f"Edit {name}")
    expect(form).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Name")).to_have_value(name)
    expect(page.get_by_label("Memory (MB)")).to_have_value("256")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def test_stop_and_start_from_the_fleet(page: Any, up: dict[str, str]) -> None:
    page.get_by_role("link", name="Fleet", exact=True).first.click()
    row = _row(page, up["finn"])
    row.get_by_role("button", name=f"Stop {up['finn']}").click()
    expect(row.locator(".phase")).to_have_text("stopped", timeout=RUNNING_TIMEOUT)
    row.get_by_role("button", name=f"Start {up['finn']}").click()
    expect(row.locator(".phase")).to_have_text("running", timeout=RUNNING_TIMEOUT)


def test_team_classify_and_chat(page: Any, up: dict[str, str]) -> None:
    token = json.loads(page.evaluate("sessionStorage.getItem('clawpen.session')"))["access"]
    api = httpx.Client(base_url=up["url"], headers={"Authorization": f"Bearer {token}"}, timeout=30)
    config = {"llm_provider": "ollama", "llm_model": "fake-1", "base_url": up["model_url"], "memory_mb": 256}
    assert api.post("/api/agents", json={"name": up["pax"], "config": config}).status_code == 201

    page.get_by_role("link", name="Teams").click()
    page.get_by_role("link", name="UI Team").click()
    expect(page.get_by_role("heading", name="UI Team")).to_be_visible()
    page.get_by_label("Classify a message").fill("Here is a receipt from the taxi")
    page.get_by_role("button", name="Classify").click()
    result = page.locator(".classification")
    expect(result).to_contain_text("receipts")
    expect(result).to_contain_text(up["finn"])
    expect(result).to_contain_text("receipt")  # the matched keyword

    # The members list follows the watch: pax becomes running without a reload.
    members = page.locator(".members")
    expect(members.locator("li", has_text=up["pax"]).locator(".phase")).to_have_text("running", timeout=RUNNING_TIMEOUT)
    page.get_by_label("Message", exact=True).fill("Please pay the vendor bill")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".msg.assistant[data-done=true]")
    expect(answer.locator(".text")).to_have_text("agent heard: Please pay the vendor bill", timeout=30_000)
    expect(answer.locator(".from")).to_have_text(up["pax"])  # which agent answered
    assert answer.get_attribute("data-from") == up["pax"]
    expect(page.locator(".msg.routing")).to_contain_text(f"→ {up['pax']}")
    shot(page, "team")


def test_delete_asks_first(page: Any, up: dict[str, str]) -> None:
    page.goto(f"/#/agents/{up['pax']}")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete agent")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete agent").click()
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    expect(_row(page, up["pax"])).to_have_count(0)


def test_logout(page: Any, up: dict[str, str]) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Password")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('clawpen.session')") is None
    # No script error on any page (answers like the wrong password's 401 are logged by Chromium as
    # "Failed to load resource"; those are the API speaking, not the page failing).
    errors = [e for e in page.console_errors if not e.startswith("Failed to load resource")]
    assert errors == [], errors


def test_readme_screenshots_exist() -> None:
    for name in ("fleet", "chat"):
        assert (ROOT / "docs" / f"dashboard-{name}.png").stat().st_size > 1000
