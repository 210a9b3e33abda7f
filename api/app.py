"""The gateway's app factory: routes, middleware and error handlers wired around a store and a runtime.

`create_app` takes its collaborators instead of building them, so `clawpen up` (which shares them
with the controller), `clawpen gateway`, the tests and the benchmark all assemble the same app.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute

from api import redact
from api.auth import AuthService
from api.context import Catalog, Deps
from api.errors import EXCEPTION_HANDLERS
from api.guard import Guard
from api.middleware import AuditTrail, JsonTooLarge, RequestMetrics, SecurityHeaders
from api.routematch import RouteTable, TableRouter
from api.routes import agents, apply, auth, dashboard, oidc, secrets, snapshots, system, teams, users, watch, ws
from controller.agent_token import open_agent_tokens
from controller.runtime.base import Runtime
from controller.settings import Settings
from controller.store.base import Store

log = logging.getLogger("clawpen.api")

ROUTES: list[BaseRoute] = [
    *system.ROUTES,
    *auth.ROUTES,
    *agents.ROUTES,
    *apply.ROUTES,
    *secrets.ROUTES,
    *snapshots.ROUTES,
    *ws.ROUTES,
    *teams.ROUTES,
    *watch.ROUTES,
    *dashboard.ROUTES,
    *users.ROUTES,
    *oidc.ROUTES,
]
MAX_BODY_BYTES = 1024 * 1024


def create_app(
    settings: Settings,
    store: Store,
    runtime: Runtime,
    catalog: Catalog,
    *,
    env: Mapping[str, str] | None = None,
    auth_service: AuthService | None = None,
) -> Starlette:
    """Build the gateway. `env` is where CLAWPEN_ADMIN_PASSWORD is read on the first start."""
    redact.install()
    service = auth_service or AuthService.from_home(
        settings.ensure_home(),
        registration_enabled=settings.registration_enabled,
        env=os.environ if env is None else env,
    )
    dependencies = Deps(
        settings=settings,
        store=store,
        runtime=runtime,
        catalog=catalog,
        auth=service,
        tokens=open_agent_tokens(settings.ensure_home(), runtime),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # trust_env=False: the agent is on this host or a container network, never behind a proxy.
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
            dependencies.http = client
            if not service.admin.exists():
                log.warning("no admin password is set: run `clawpen admin set-password` (logins are refused)")
            yield
            hub = getattr(app.state, "watch_hub", None)
            if hub is not None:
                await hub.close()
            dependencies.http = None

    sso: list[Middleware] = []
    if oidc.configured(settings):
        # Authlib keeps state, nonce and the PKCE verifier in this signed cookie between login and callback.
        key = hmac.new(service.tokens.signing_key, b"oidc-session", hashlib.sha256).hexdigest()
        sso = [Middleware(SessionMiddleware, secret_key=key, path="/auth/oidc", max_age=600, same_site="lax")]
    table = RouteTable(ROUTES)
    app = Starlette(
        routes=ROUTES,
        middleware=[
            *sso,
            # Starlette's own body limit (its max_body_size would sit outside our middleware, where
            # its plain-text 413 could not be turned into the API's JSON error).
            Middleware(JsonTooLarge, max_body_size=MAX_BODY_BYTES),
            Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY_BYTES),
            Middleware(RequestMetrics, routes=ROUTES),
            Middleware(SecurityHeaders),
            Middleware(AuditTrail, audit=service.audit),
            Middleware(Guard, auth=service, routes=ROUTES, recheck=settings.auth_recheck_seconds, table=table),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.router = TableRouter(table, lifespan=lifespan)  # the guard's route lookup, reused (routematch.py)
    app.state.deps = dependencies
    return app
