"""Middlewares, one job each: write the audit trail, count requests, set security headers.

Both are plain ASGI so they see every request, including ones the guard (api.guard) refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.metrics import http_request_seconds, http_requests_total
from controller.users.audit import AuditLog

log = logging.getLogger("clawpen.api")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_ROUTES = frozenset({"/auth/login", "/auth/oidc/callback"})


class AuditTrail:
    """One audit line per mutating request and per login attempt (the guard names the caller and the
    route; the login route names the user it tried). Only names, never bodies or headers."""

    def __init__(self, app: ASGIApp, audit: AuditLog):
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] not in MUTATING and scope["path"] not in LOGIN_ROUTES):
            await self.app(scope, receive, send)
            return
        code = 500
        recorded = False

        async def record() -> None:
            nonlocal recorded
            recorded = True
            who = scope.get("clawpen.principal")
            user = scope.get("clawpen.audit_user") or (who.label if who is not None else None)
            client = scope.get("client")
            try:
                await asyncio.to_thread(
                    self.audit.record,
                    user=user,
                    source=client[0] if client else "unknown",
                    method=scope["method"],
                    route=scope.get("clawpen.route") or "unmatched",
                    object=scope.get("clawpen.object"),
                    status=scope.get("clawpen.audit_status") or code,  # a refusal sent as a redirect
                )
            except OSError as err:  # a full disk must not turn every request into a 500
                log.error("audit log write failed: %s", err)

        async def send_and_note(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
                # Written before the answer leaves: whoever reads the audit log once a request has
                # finished finds it there (it used to be written after the answer, a race under load;
                # a 204 is complete at its first line).
                await record()
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if not recorded:  # no complete answer was sent (an error, a disconnect)
                await record()


class RequestMetrics:
    """Requests by method, route template and status code, and HTTP latency."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()):
        self.app = app
        self.routes = routes  # to name the route of requests refused before routing (401s)
        # The labelled children, looked up once: labels() costs a lock and a tuple build per call.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

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
            key = (method, template, str(code))
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = http_requests_total.labels(*key)
            counter.inc()
            if scope["type"] == "http":
                timer = self._timers.get(key[:2])
                if timer is None:
                    timer = self._timers[key[:2]] = http_request_seconds.labels(method, template)
                timer.observe(time.perf_counter() - started)

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
