"""Roles, permissions and the route-table declaration every route carries.

Why it is shaped like this:
- A permission is declared next to the path, in the route table (`Route(..., permission=AGENTS_READ)`),
  so reading ROUTES tells you who may call what; one guard (api.guard) reads the declaration and
  checks it. A route that declares nothing is refused at run time (fail closed) and fails the
  route x role test, so a new route cannot silently become "any logged-in user".
- Roles are fixed (admin, operator, viewer); what varies per user is the projects they are granted
  (`*` = all). Grants apply to agents through `spec.project`; an agent with no project is in the
  project "default".
- A `Need` names an action and where its project comes from: nowhere (the whole installation), the
  `{id}` agent in the path, or the `{id}` team (all of its member agents). Handlers that create or
  list things call `allowed()` / `require()` with the object's project: the same one check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from starlette import routing
from starlette.requests import HTTPConnection

from api.errors import ApiError

DEFAULT_PROJECT = "default"
ALL = "*"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


# Actions: "<object>:<verb>". Keep the list short; a route picks the closest one.
AGENTS_READ = "agents:read"
AGENTS_WRITE = "agents:write"
AGENTS_CHAT = "agents:chat"
SECRETS_LIST = "secrets:list"  # names and versions of an agent's secrets, never values
SECRETS_WRITE = "secrets:write"  # set/delete an agent's own secrets
GLOBAL_SECRETS = "global-secrets:manage"
TEAMS_READ = "teams:read"
TEAMS_WRITE = "teams:write"
TEAMS_CHAT = "teams:chat"
SYSTEM_READ = "system:read"  # templates, providers, runtime status
USERS_MANAGE = "users:manage"
AUDIT_READ = "audit:read"
TOKENS_OWN = "tokens:own"  # create/list/revoke one's own API tokens

VIEWER_ACTIONS = frozenset(
    {AGENTS_READ, AGENTS_CHAT, SECRETS_LIST, TEAMS_READ, TEAMS_CHAT, SYSTEM_READ, TOKENS_OWN}
)
OPERATOR_ACTIONS = VIEWER_ACTIONS | {AGENTS_WRITE, SECRETS_WRITE, TEAMS_WRITE}
ADMIN_ACTIONS = OPERATOR_ACTIONS | {GLOBAL_SECRETS, USERS_MANAGE, AUDIT_READ}
ROLE_ACTIONS: dict[Role, frozenset[str]] = {
    Role.VIEWER: VIEWER_ACTIONS,
    Role.OPERATOR: frozenset(OPERATOR_ACTIONS),
    Role.ADMIN: frozenset(ADMIN_ACTIONS),
}
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
GLOBAL_ONLY = frozenset({GLOBAL_SECRETS, USERS_MANAGE, AUDIT_READ})  # need the `*` grant too

Scope = Literal["public", "global", "agent", "team"]


@dataclass(frozen=True)
class Need:
    """What a route requires: `action` in the project(s) that `scope` points at.
    `public` routes need no credential at all (login, health)."""

    action: str
    scope: Scope = "global"

    def __str__(self) -> str:
        return self.action


PUBLIC = Need("public", "public")


def need(action: str, scope: Scope = "global") -> Need:
    return Need(action, scope)


@dataclass(frozen=True)
class Principal:
    """Who is calling, after the credential was checked: a user, or an API token acting for one."""

    name: str  # the user
    role: Role
    projects: frozenset[str] = field(default_factory=lambda: frozenset({ALL}))
    token: str | None = None  # the API token's name when the call came with one
    credential: dict[str, Any] = field(default_factory=dict, compare=False)  # claims, for re-checks

    @property
    def label(self) -> str:
        return f"{self.name} (token {self.token})" if self.token else self.name

    def has(self, action: str) -> bool:
        return action in ROLE_ACTIONS[self.role]

    def in_project(self, project: str | None) -> bool:
        return ALL in self.projects or (project or DEFAULT_PROJECT) in self.projects

    def can(self, action: str, project: str | None = None, *, everywhere: bool = False) -> bool:
        """`project=None` with `everywhere=False` asks "in at least one project"."""
        if not self.has(action):
            return False
        if everywhere or action in GLOBAL_ONLY:
            return ALL in self.projects
        return project is None or self.in_project(project)

    def can_all(self, action: str, projects: Iterable[str | None]) -> bool:
        return self.has(action) and all(self.in_project(p) for p in projects)


def forbidden(principal: Principal, action: str, where: str | None = None) -> ApiError:
    place = f" in project {where!r}" if where else ""
    return ApiError(
        403,
        f"{principal.label} ({principal.role.value}) lacks permission {action}{place}",
        detail={"missing_permission": action, "project": where},
    )


def principal(conn: HTTPConnection) -> Principal:
    """The caller of a guarded route (the guard put it there)."""
    found = conn.scope.get("clawpen.principal")
    if not isinstance(found, Principal):
        raise ApiError(401, "not authenticated")
    return found


def allowed(conn: HTTPConnection, action: str, project: str | None) -> bool:
    return principal(conn).can(action, project or DEFAULT_PROJECT)


def require(conn: HTTPConnection, action: str, project: str | None = None, *, everywhere: bool = False) -> None:
    who = principal(conn)
    target = None if everywhere else (project or DEFAULT_PROJECT)
    if not who.can(action, target, everywhere=everywhere):
        raise forbidden(who, action, ALL if everywhere else target)


# ---- the route table's vocabulary ------------------------------------------------------------------


class Route(routing.Route):
    """starlette's Route with the permission it needs declared beside the path."""

    def __init__(self, path: str, endpoint: Any, *, permission: Need, **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        self.permission = permission


class WebSocketRoute(routing.WebSocketRoute):
    def __init__(self, path: str, endpoint: Any, *, permission: Need, **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        self.permission = permission


def declare(permission: Need, route: routing.BaseRoute) -> routing.BaseRoute:
    """Tag any route object (a Mount, a third-party route) with its permission."""
    route.permission = permission  # type: ignore[attr-defined]
    return route


def declared(route: routing.BaseRoute) -> Need | None:
    found = getattr(route, "permission", None)
    return found if isinstance(found, Need) else None
