"""A real OpenID provider for the SSO tests: panva's certified `oidc-provider` (node), behind a small
pass-through HTTP proxy that the tests own.

Why the proxy: some refusals must be proven on *our* side, where a real provider never misbehaves.
The proxy forwards every request unchanged (Host kept, so the provider builds its URLs on the
proxy's address, which is also its issuer) except that a test may set `swap`: the next token
endpoint answer is replaced by another real answer of the same provider, e.g. an ID token minted
for another client. That is the token-substitution a compromised network path or a mix-up attack
would attempt; the gateway must refuse it itself.

deploy/host/ensure-oidc-provider.sh installs the provider (make test runs it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = Path(
    os.environ.get("CLAWPEN_OIDC_PROVIDER_DIR") or Path.home() / ".cache" / "clawpen" / "oidc-provider"
)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


def ensure_installed() -> None:
    if shutil.which("node") is None:
        raise RuntimeError("node is required for the SSO tests (a real OpenID provider)")
    subprocess.run(["bash", str(ROOT / "deploy/host/ensure-oidc-provider.sh")], check=True, timeout=600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OidcProvider:
    """`issuer` is known at construction (the gateway needs it first); `start(redirect_uri)` runs node."""

    def __init__(self) -> None:
        self.upstream_port = _free_port()
        self.swap: dict[str, Any] | None = None  # the next token answer, replaced once
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = httpx.request(
                    self.command,
                    f"http://127.0.0.1:{outer.upstream_port}{self.path}",
                    headers=headers,
                    content=body,
                    timeout=30,
                    follow_redirects=False,
                )
                content = answer.content
                swap, outer.swap = (outer.swap, None) if self.path == "/token" else (None, outer.swap)
                if swap is not None:  # the real exchange happened (its code is spent); answer another one
                    content = json.dumps(swap).encode()
                self.send_response(answer.status_code)
                for key, value in answer.headers.multi_items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, redirect_uri: str) -> OidcProvider:
        ensure_installed()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.proc = subprocess.Popen(
            ["node", str(ROOT / "tests/api/oidc/provider.mjs"), str(self.upstream_port), redirect_uri, self.issuer],
            env={**os.environ, "CLAWPEN_OIDC_PROVIDER_DIR": str(PROVIDER_DIR)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        seen: list[str] = []
        while "ready" not in seen and len(seen) < 20:  # warnings (node version, dev forms) come first
            seen.append(self.proc.stdout.readline().strip())
        assert "ready" in seen, seen
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        self.server.shutdown()
        self.server.server_close()

    # ---- playing a browser and another client -----------------------------------------------------

    def token_for_another_client(self, authorize_url: str, user: str, client_id: str = "intruder") -> dict[str, Any]:
        """A real token answer for `client_id`, with the nonce and redirect of `authorize_url` (the
        gateway's request): only the audience differs from what the gateway would get."""
        ours = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {
            "client_id": client_id,
            "redirect_uri": ours["redirect_uri"],
            "response_type": "code",
            "scope": ours["scope"],
            "nonce": ours["nonce"],
            "state": "other-client",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        browser = httpx.Client(timeout=30, follow_redirects=False)
        landing = drive(browser, f"{self.issuer}/auth?{urlencode(query)}", user, stop_at=ours["redirect_uri"])
        code = parse_qs(urlsplit(landing).query)["code"][0]
        answer = httpx.post(
            f"{self.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": ours["redirect_uri"],
                "code_verifier": verifier,
            },
            auth=(client_id, f"{client_id}-secret-for-tests-only"),
        )
        answer.raise_for_status()
        token: dict[str, Any] = answer.json()
        return token


@contextmanager
def sso_gateway(home: Path, role_map: str) -> Iterator[tuple[Any, OidcProvider]]:
    """A real gateway (tests.api.conftest.start_gateway) whose single sign-on is this provider."""
    from tests.api.conftest import start_gateway

    provider = OidcProvider()
    gateway = start_gateway(
        home,
        oidc_issuer=provider.issuer,
        oidc_client_id="clawpen",
        oidc_client_secret="clawpen-secret-for-tests-only",
        oidc_role_map=role_map,
    )
    try:
        provider.start(f"{gateway.url}/auth/oidc/callback")
        yield gateway, provider
    finally:
        provider.stop()
        gateway.stop()


def _form(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action, html[:500]
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    return action.group(1), fields


def drive(browser: httpx.Client, url: str, user: str, stop_at: str) -> str:
    """Follow the provider's redirects and fill its login (any password) and consent forms as
    `user`, until a redirect points at `stop_at`; returns that URL (not fetched)."""
    for _ in range(20):
        if url.startswith(stop_at):
            return url
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
    raise AssertionError(f"the sign-in never reached {stop_at}")
