"""The dashboard's files are served from the installed package, with strict security headers.

The browser suite (tests/browser) drives the pages; this checks what a browser is given: the shell,
its modules with JavaScript types, the manifest and service worker at the root, and a
Content-Security-Policy that allows no inline script and no framing — on pages and API answers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from api.middleware import CONTENT_SECURITY_POLICY
from tests.api.harness import ServerThread

DASHBOARD = Path(__file__).resolve().parents[2] / "api" / "dashboard"


def test_shell_is_served_with_strict_headers(gateway: ServerThread) -> None:
    page = httpx.get(f"{gateway.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    csp = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert csp["script-src"] == "'self'" and "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert csp["frame-ancestors"] == "'none'" and csp["connect-src"] == "'self'"
    # No inline script or style, no external origin: everything the page loads is ours.
    html = page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and "<style" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_api_answers_carry_the_same_headers(gateway: ServerThread) -> None:
    refused = httpx.get(f"{gateway.url}/api/agents")
    assert refused.status_code == 401
    assert refused.headers["x-frame-options"] == "DENY"
    assert refused.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_every_shipped_file_is_served_with_its_type(gateway: ServerThread) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}
    files = [p for p in DASHBOARD.rglob("*") if p.is_file() and p.suffix in types]
    assert len(files) >= 10
    for path in files:
        rel = path.relative_to(DASHBOARD).as_posix()
        answer = httpx.get(f"{gateway.url}/ui/{rel}")
        assert answer.status_code == 200, rel
        assert answer.headers["content-type"].startswith(types[path.suffix]), rel
        assert answer.content == path.read_bytes()
        if path.suffix == ".js":  # no eval, no remote imports
            text = path.read_text()
            assert "eval(" not in text and "new Function" not in text and not re.search(r"from \"https?:", text)


def test_manifest_and_service_worker_make_it_installable(gateway: ServerThread) -> None:
    manifest = httpx.get(f"{gateway.url}/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    data = json.loads(manifest.text)
    assert data["display"] == "standalone" and data["start_url"] == "/"
    sizes = {icon["sizes"] for icon in data["icons"] if icon["type"] == "image/png"}
    assert {"192x192", "512x512"} <= sizes
    for icon in data["icons"]:
        assert httpx.get(f"{gateway.url}{icon['src']}").status_code == 200
    worker = httpx.get(f"{gateway.url}/sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    # Every file the worker pre-caches exists, and it never caches the API.
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", worker.text, re.S).group(1).replace(",\n]", "]"))  # type: ignore[union-attr]
    for path in shell:
        assert httpx.get(f"{gateway.url}{path}").status_code == 200, path
    assert not any(p.startswith(("/api", "/auth")) for p in shell)


def test_wheel_ships_the_dashboard() -> None:
    import tomllib

    config = tomllib.loads((DASHBOARD.parents[1] / "pyproject.toml").read_text())
    assert "dashboard/**/*" in config["tool"]["setuptools"]["package-data"]["api"]
