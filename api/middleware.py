"""Three middlewares, one job each: require an access token, count requests, set security headers.

Both are plain ASGI so they see WebSockets as well as HTTP. The guard protects by path prefix
(/api/), which makes "every /api route needs a token" a property of the app rather than something
each route must remember.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from urllib.parse import parse_qs

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import AuthError, TokenIssuer
from controller.metrics import http_request_seconds, http_requests_total

PROTECTED_PREFIX = "/api/"
PUBLIC_UNDER_API = ("/api/auth/refresh",)  # the original client refreshes here, with no valid access token
WS_UNAUTHORIZED = 4401


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    if scope["type"] == "websocket":  # browsers cannot set headers on a WebSocket
        tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if tokens:
            return tokens[0]
    return None


class AuthGuard:
    def __init__(self, app: ASGIApp, tokens: TokenIssuer):
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self._protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        try:
            if token is None:
                raise AuthError("missing access token (Authorization: Bearer <token>)")
            scope["auth"] = self.tokens.verify_access(token)
        except AuthError as err:
            if scope["type"] == "http":
                await self._refuse_http(send, str(err))
            else:
                await self._refuse_ws(receive, send, str(err))
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _protected(path: str) -> bool:
        return path.startswith(PROTECTED_PREFIX) and path not in PUBLIC_UNDER_API

    @staticmethod
    async def _refuse_http(send: Send, message: str) -> None:
        body = json.dumps({"error": message, "detail": None}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _refuse_ws(receive: Receive, send: Send, message: str) -> None:
        # Accept first: a close before accept is an HTTP 403 that browsers hide; this way the client
        # gets a frame saying why and the 4401 close code.
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        frame = {"role": "system", "error": "unauthorized", "content": message}
        await send({"type": "websocket.send", "text": json.dumps(frame)})
        await send({"type": "websocket.close", "code": WS_UNAUTHORIZED, "reason": "unauthorized"})


class RequestMetrics:
    """Requests by method, route template and status code, and HTTP latency."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()):
        self.app = app
        self.routes = routes  # to name the route of requests refused before routing (401s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500 if scope["type"] == "http" else 1000

        async def send_and_note(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            elif message["type"] == "websocket.close":
                code = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = getattr(scope.get("route"), "path", None) or self._template(scope)
            method = scope.get("method", "WS")
            http_requests_total.labels(method, template, str(code)).inc()
            if scope["type"] == "http":
                http_request_seconds.labels(method, template).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return str(getattr(route, "path", "unmatched"))
        return "unmatched"


# The dashboard's policy: its own scripts and styles only (no inline script, no eval, no CDN), API
# calls and WebSockets to this origin only, and no page may frame it (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """The same strict headers on every HTTP response (API answers included: a JSON body opened in
    a tab is a page too). Headers a route set itself win."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class JsonTooLarge:
    """Starlette's body limit answers 413 in plain text; the API promises JSON errors everywhere.
    This rewrites that one response (whether the limit tripped on Content-Length or mid-stream)."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.body = json.dumps(
            {"error": "request body too large", "detail": f"the limit is {max_body_size} bytes"}
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting = False

        async def send_json_413(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(message.get("headers") or [])
                if not headers.get(b"content-type", b"").startswith(b"application/json"):
                    rewriting = True
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(self.body)).encode()),
                                (b"connection", b"close"),
                            ],
                        }
                    )
                    return
            if rewriting and message["type"] == "http.response.body":
                if not message.get("more_body"):
                    await send({"type": "http.response.body", "body": self.body})
                return
            await send(message)

        await self.app(scope, receive, send_json_413)
