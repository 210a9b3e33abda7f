"""/auth/oidc/login and /auth/oidc/callback: single sign-on with OpenID Connect, through Authlib.

Authorization code flow with PKCE (S256), state and nonce, all done by Authlib's Starlette client:
it fetches the provider's discovery document and JWKS and validates the ID token (signature,
issuer, audience = our client id, expiry, nonce). We write no JWT or JWKS code of our own. The
short-lived state/nonce/PKCE verifier live in a signed session cookie scoped to /auth/oidc.

After the provider vouches for the user we mint *our* token pair (same rotation and revocation rules
as a password login). The role comes from a claim (CLAWPEN_OIDC_ROLE_CLAIM, default `groups`) mapped
by CLAWPEN_OIDC_ROLE_MAP (`group=role[:project|project],...`); a user the map does not cover is
refused, one it covers is created (source `oidc`) or updated to the mapped role on each sign-in.
A local (password) user with the same name is never taken over.

Two kinds of caller finish here. API and CLI clients (plain `GET /auth/oidc/login`) get the token
pair as JSON from the callback. The dashboard starts with `?client=dashboard`: its callback answers
with a redirect to `/#sso=<one-time code>` (never tokens in a URL; see api.sso_handoff), and the page
trades the code with `POST /auth/oidc/exchange`. A refusal on that path goes back to the dashboard
as `/#sso-error=<message>`, so the user sees why on the sign-in page.

The ID token is checked by Authlib with our options made explicit: `iss` must be the provider's
issuer and `aud` must contain our client id (Authlib's default checks `aud` only through `azp`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from api.context import parse_body
from api.errors import ApiError
from api.openapi import Operation, Query, operation
from api.permissions import PUBLIC, ROLE_RANK, Role, Route
from api.schemas import Body, TokenOut
from api.sso_handoff import Handoffs
from controller.settings import Settings
from controller.users.store import ADMIN_NAME, NAME_RULE, User

log = logging.getLogger("clawpen.api.oidc")
CLIENT = "oidc"
TAGS = ("auth",)
DASHBOARD = "dashboard"
LOGIN_QUERY = (Query("client", {"type": "string", "enum": [DASHBOARD]}, "dashboard: finish at the dashboard"),)


class ExchangeRequest(Body):
    code: str = Field(min_length=1, max_length=200, description="the one-time code from /#sso=")


@dataclass(frozen=True)
class RoleRule:
    group: str
    role: Role
    projects: tuple[str, ...]


def parse_role_map(text: str) -> list[RoleRule]:
    """`admins=admin,devs=operator:alpha|beta,readers=viewer` -> rules (projects default to all)."""
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, _, target = item.partition("=")
        role, _, projects = target.partition(":")
        try:
            rules.append(
                RoleRule(group.strip(), Role(role.strip()), tuple(p for p in projects.split("|") if p) or ("*",))
            )
        except ValueError:
            raise ValueError(f"CLAWPEN_OIDC_ROLE_MAP: {item!r} must be group=admin|operator|viewer[:p1|p2]") from None
    return rules


def map_role(claim: Any, rules: list[RoleRule]) -> tuple[Role, list[str]] | None:
    """The highest role any of the user's groups maps to (projects of that role's rules, merged)."""
    groups = {claim} if isinstance(claim, str) else set(claim or [])
    hits = [r for r in rules if r.group in groups]
    if not hits:
        return None
    best = max(hits, key=lambda r: ROLE_RANK[r.role])
    projects = sorted({p for r in hits if r.role == best.role for p in r.projects})
    return best.role, (["*"] if "*" in projects else projects)


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _client(request: Request) -> Any:
    state = request.app.state
    if getattr(state, "oidc", None) is None:
        from authlib.integrations.starlette_client import OAuth

        settings: Settings = request.app.state.deps.settings
        oauth = OAuth()
        oauth.register(
            CLIENT,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret or None,
            server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        )
        state.oidc = oauth.create_client(CLIENT)
    return state.oidc


def _require_configured(request: Request) -> Settings:
    settings: Settings = request.app.state.deps.settings
    if not configured(settings):
        raise ApiError(404, "single sign-on is not configured (CLAWPEN_OIDC_ISSUER, CLAWPEN_OIDC_CLIENT_ID)")
    return settings


@operation(
    Operation(
        "Start single sign-on: redirects to the OpenID provider",
        status=302,
        errors=(404,),
        query=LOGIN_QUERY,
        public=True,
        tags=TAGS,
    )
)
async def oidc_login(request: Request) -> Response:
    _require_configured(request)
    request.session["clawpen_client"] = DASHBOARD if request.query_params.get("client") == DASHBOARD else "api"
    redirect_uri = str(request.url_for("oidc_callback"))
    response: Response = await _client(request).authorize_redirect(request, redirect_uri)
    return response


@operation(
    Operation(
        "Finish single sign-on: our token pair for the provider's user (the dashboard: a redirect to /#sso=CODE)",
        response=TokenOut,
        errors=(400, 403, 404, 409),
        public=True,
        tags=TAGS,
    )
)
async def oidc_callback(request: Request) -> Response:
    settings = _require_configured(request)
    to_dashboard = request.session.pop("clawpen_client", None) == DASHBOARD
    try:
        pair = await _sign_in(request, settings)
    except ApiError as err:
        if not to_dashboard:
            raise
        log.info("single sign-on refused (%s): %s", err.status, err.message)
        request.scope["clawpen.audit_status"] = err.status
        return RedirectResponse("/#" + urlencode({"sso-error": err.message}), status_code=303)
    from api.routes.auth import _tokens

    if not to_dashboard:
        return _tokens(pair)
    code, digest = _handoffs(request).put(pair)
    request.session["clawpen_handoff"] = digest
    return RedirectResponse(f"/#sso={code}", status_code=303, headers={"Cache-Control": "no-store"})


@operation(
    Operation(
        "Trade the dashboard's one-time single sign-on code for the token pair (once, same browser)",
        body=ExchangeRequest,
        response=TokenOut,
        errors=(400, 404),
        public=True,
        tags=TAGS,
    )
)
async def oidc_exchange(request: Request) -> JSONResponse:
    _require_configured(request)
    body = await parse_body(request, ExchangeRequest)
    pair = _handoffs(request).take(body.code, request.session.pop("clawpen_handoff", None))
    if pair is None:
        raise ApiError(400, "this sign-in code is unknown, used, expired or from another browser; sign in again")
    from api.routes.auth import _tokens

    return _tokens(pair)


def _handoffs(request: Request) -> Handoffs:
    state = request.app.state
    if getattr(state, "sso_handoffs", None) is None:
        state.sso_handoffs = Handoffs()
    handoffs: Handoffs = state.sso_handoffs
    return handoffs


async def _sign_in(request: Request, settings: Settings) -> Any:
    """The provider's answer checked, the user mapped and upserted: our token pair for them."""
    from authlib.integrations.base_client import OAuthError
    from joserfc.errors import InvalidClaimError, JoseError  # what Authlib's ID token validation raises

    client = _client(request)
    try:
        metadata = await client.load_server_metadata()
        options = {
            "iss": {"essential": True, "values": [metadata["issuer"]]},
            "aud": {"essential": True, "values": [settings.oidc_client_id]},
        }
        token = await client.authorize_access_token(request, claims_options=options)
    except InvalidClaimError as err:
        if err.claim == "aud":
            wrong = f"the ID token is meant for another client, not {settings.oidc_client_id!r}"
            raise ApiError(400, f"single sign-on refused: {wrong}") from None
        raise ApiError(400, f"single sign-on refused: {err}") from None
    except (OAuthError, JoseError) as err:
        raise ApiError(400, f"single sign-on refused: {err}") from None
    claims = token.get("userinfo")
    if not claims or "id_token" not in token:  # Authlib validates an ID token only when there is one
        raise ApiError(400, "single sign-on refused: the provider sent no ID token")
    name = _user_name(claims)
    request.scope["clawpen.audit_user"] = name
    mapped = map_role(claims.get(settings.oidc_role_claim), parse_role_map(settings.oidc_role_map))
    if mapped is None:
        raise ApiError(403, f"single sign-on refused: no role is mapped for {name!r}'s {settings.oidc_role_claim}")
    auth = request.app.state.deps.auth
    await asyncio.to_thread(_upsert, auth.users, name, mapped)
    return auth.tokens.issue(sub=name)


def _user_name(claims: dict[str, Any]) -> str:
    for candidate in (claims.get("preferred_username"), claims.get("email")):
        if isinstance(candidate, str) and NAME_RULE.match(candidate.lower()) and candidate.lower() != ADMIN_NAME:
            return candidate.lower()
    return "oidc-" + hashlib.sha256(str(claims["sub"]).encode()).hexdigest()[:12]


def _upsert(users: Any, name: str, mapped: tuple[Role, list[str]]) -> None:
    role, projects = mapped
    current = users.get(name)
    if current is None:
        users.create(User(name=name, role=role.value, projects=projects, source="oidc"))
        log.info("single sign-on created user %s (%s)", name, role.value)
    elif current.source != "oidc":
        raise ApiError(409, f"a local user named {name!r} exists; single sign-on will not take it over")
    elif not current.enabled:
        raise ApiError(403, f"user {name!r} is disabled")
    elif (current.role, current.projects) != (role.value, projects):
        users.update(name, {"role": role.value, "projects": projects})


ROUTES = [
    Route("/auth/oidc/login", oidc_login, methods=["GET"], permission=PUBLIC),
    Route("/auth/oidc/callback", oidc_callback, methods=["GET"], name="oidc_callback", permission=PUBLIC),
    Route("/auth/oidc/exchange", oidc_exchange, methods=["POST"], permission=PUBLIC),
]
