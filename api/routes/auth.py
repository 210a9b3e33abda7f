"""/auth/*: log in with a user's (or the admin's) password, refresh tokens, and report how auth is configured.

These routes are public by necessity; the login limiter is what keeps them from being a password
oracle. Argon2 verification is CPU-heavy, so it runs in a worker thread and never stalls the loop.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.auth import TokenPair, check_password_rules
from api.context import deps, parse_body
from api.errors import ApiError
from api.openapi import Operation, operation
from api.permissions import PUBLIC, Route
from api.schemas import AuthStatusOut, LoginRequest, RefreshRequest, RegisterRequest, TokenOut
from controller.users.store import ADMIN_NAME


def _tokens(pair: TokenPair, status: int = 200) -> JSONResponse:
    body = TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)
    return JSONResponse(body.model_dump(), status_code=status, headers={"Cache-Control": "no-store"})


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@operation(
    Operation(
        "Log in (a user name and password; no user name = the built-in admin)",
        body=LoginRequest,
        response=TokenOut,
        errors=(400, 401, 403, 429),
        public=True,
        tags=("auth",),
    )
)
async def login(request: Request) -> JSONResponse:
    auth = deps(request).auth
    client = _client(request)
    body = await parse_body(request, LoginRequest)
    username = body.username or ADMIN_NAME
    request.scope["clawpen.audit_user"] = username  # the audit log names who was tried, even on a 429
    if username == ADMIN_NAME and not auth.admin.exists():
        raise ApiError(403, "no admin password is set; run `clawpen admin set-password`")
    # Per source address and per user; the attempt is counted *before* the hash, so a burst of
    # concurrent guesses meets the limit instead of all reaching Argon2.
    keys = [client, f"user:{username}"]
    wait = auth.limiter.reserve(keys)
    if wait:
        raise ApiError(429, f"too many failed logins; retry in {wait} s", headers={"Retry-After": str(wait)})
    if not await auth.verify_password(username, body.password):
        wrong = "wrong password" if body.username is None else "wrong user name or password"
        raise ApiError(401, wrong, headers={"WWW-Authenticate": "Bearer"})
    for key in keys:
        auth.limiter.succeeded(key)
    return _tokens(auth.tokens.issue(sub=username))


@operation(
    Operation(
        "Set the admin password (only when registration is enabled and no admin exists)",
        body=RegisterRequest,
        response=TokenOut,
        status=201,
        errors=(400, 403, 409),
        public=True,
        tags=("auth",),
    )
)
async def register(request: Request) -> JSONResponse:
    auth = deps(request).auth
    if not auth.registration_enabled:
        raise ApiError(403, "registration is disabled; set the password with `clawpen admin set-password`")
    body = await parse_body(request, RegisterRequest)
    if auth.admin.exists():
        raise ApiError(409, "an admin password is already set")
    check_password_rules(body.password)
    hashed = await run_in_threadpool(auth.admin.hash, body.password)
    if auth.admin.exists():  # checked again with no await before the write: two racing registers, one wins
        raise ApiError(409, "an admin password is already set")
    auth.admin.store_hash(hashed)
    return _tokens(auth.tokens.issue(), status=201)


@operation(
    Operation(
        "Trade a refresh token for a new token pair (the old refresh token dies)",
        body=RefreshRequest,
        response=TokenOut,
        errors=(400, 401),
        public=True,
        tags=("auth",),
    )
)
async def refresh(request: Request) -> JSONResponse:
    body = await parse_body(request, RefreshRequest)
    return _tokens(deps(request).auth.tokens.rotate(body.refresh_token))


@operation(Operation("How authentication is configured", response=AuthStatusOut, public=True, tags=("auth",)))
async def status(request: Request) -> JSONResponse:
    auth = deps(request).auth
    from api.routes.oidc import configured

    out = AuthStatusOut(
        auth_enabled=True,
        has_admin=auth.admin.exists(),
        registration_enabled=auth.registration_enabled,
        sso_enabled=configured(deps(request).settings),
    )
    return JSONResponse(out.model_dump())


ROUTES = [
    Route("/auth/login", login, methods=["POST"], permission=PUBLIC),
    Route("/auth/register", register, methods=["POST"], permission=PUBLIC),
    Route("/auth/refresh", refresh, methods=["POST"], permission=PUBLIC),
    Route("/api/auth/refresh", refresh, methods=["POST"], name="refresh_api", permission=PUBLIC),
    Route("/auth/status", status, methods=["GET"], permission=PUBLIC),
]
