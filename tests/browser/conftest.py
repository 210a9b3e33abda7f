"""Browser suite fixtures: a real `clawpen up` (controller + gateway, real Docker engine, real agent
image), a fake model server (the one fake: model providers), and Debian's chromium driven by
Playwright for Python. `playwright install` cannot download browsers here, so the suite uses
/usr/bin/chromium (deploy/host/ensure-chromium.sh installs it; `make test` runs that) and is
skipped, with the reason, when it is missing outside CI.

Screenshots go to test-artifacts/screenshots/ (git-ignored); docs/ holds two of them for the README.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.model_server import FakeModelServer, Script, last_user_message
from tests.support.clawpen_up import clawpen_up

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CLAWPEN_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "browser suite password"
ROUTER_PROMPT = "You route messages for the team"

TEAM = """
[team]
id = "ui-team"
name = "UI Team"
description = "Receipts and bills"

[router]
mode = "keyword"

[agents]
receipts = {{ agent = "{finn}", description = "Money already spent: receipts and expenses" }}
payables = {{ agent = "{pax}", description = "Money we owe: bills and vendor payments" }}

[routing.receipts]
keywords = ["receipt", "expense"]

[routing.payables]
keywords = ["bill", "vendor"]
"""


def model_reply(body: dict[str, Any]) -> str:
    messages = body.get("messages", [])
    system = next((m["content"] for m in messages if m.get("role") == "system"), "") or ""
    match = re.search(r"You are ([a-z0-9-]+)", system)
    return f"{match.group(1) if match else 'agent'} heard: {last_user_message(body)}"


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} missing: run deploy/host/ensure-chromium.sh (make test does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    # Streamed in pieces with a pause, so the page shows a reply growing (not only the final text).
    server.default = Script(reply=model_reply, chunks=6, chunk_delay=0.15)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def up(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, agent_image: str, fake: FakeModelServer
) -> Iterator[dict[str, str]]:
    names = {"finn": "ui-finn", "pax": "ui-pax"}
    home = tmp_path_factory.mktemp("home")
    teams = {"ui-team.toml": TEAM.format(**names)}
    with clawpen_up(docker_client, agent_image, home, password=PASSWORD, teams=teams, resync_seconds=5) as run:
        yield {"url": run.url, "model_url": fake.container_url(), **names}
    assert run.proc.returncode == 0, run.tail()


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(chromium_path),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def page(browser: Any, up: dict[str, str]) -> Iterator[Any]:
    context = browser.new_context(base_url=up["url"], viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    p = context.new_page()
    p.console_errors = []  # type: ignore[attr-defined]
    p.on("console", lambda m: m.type == "error" and p.console_errors.append(m.text))  # type: ignore[attr-defined]
    p.on("pageerror", lambda e: p.console_errors.append(str(e)))  # type: ignore[attr-defined]
    yield p
    context.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def ws_chat(url: str, token: str, agent: str, content: str, session: str) -> list[dict[str, Any]]:
    from websockets.sync.client import connect

    frames: list[dict[str, Any]] = []
    with connect(url.replace("http://", "ws://") + f"/api/agents/{agent}/chat?token={token}") as ws:
        ws.send(json.dumps({"content": content, "session": session}))
        while not (frames and (frames[-1].get("done") or frames[-1].get("error"))):
            frames.append(json.loads(ws.recv(timeout=60)))
    return frames
