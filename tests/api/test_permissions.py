"""Every route x every caller (admin, operator, viewer, API tokens, no credential): allowed or refused.

The expected table below is written out by hand, independently of the declarations in the route
modules, so a wrong declaration fails here. A route that is not in the table (another feature's new
route) must still declare a permission; `test_every_route_declares_a_permission` fails otherwise.
Callers: `operator` and `viewer` are granted the project `alpha` only; `a1` is in alpha, `b1` in beta.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from api.app import ROUTES
from api.permissions import declared
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread

PASSWORD_OP = "operator password 123"
PASSWORD_VIEW = "viewer password 1234"

# (method, path) -> (who may call it, which object it acts on)
# who: public | viewer | operator | admin  (each includes the ones after it in ROLE_ORDER)
# on:  - (global) | agent (path {id} = an agent) | team | star (needs the "*" grant, checked by the route)
EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/health"): ("public", "-"),
    ("GET", "/metrics"): ("public", "-"),
    ("GET", "/openapi.json"): ("public", "-"),
    ("POST", "/auth/login"): ("public", "-"),
    ("POST", "/auth/register"): ("public", "-"),
    ("POST", "/auth/refresh"): ("public", "-"),
    ("POST", "/api/auth/refresh"): ("public", "-"),
    ("GET", "/auth/status"): ("public", "-"),
    ("GET", "/auth/oidc/login"): ("public", "-"),
    ("GET", "/auth/oidc/callback"): ("public", "-"),
    ("POST", "/auth/oidc/exchange"): ("public", "-"),
    ("GET", "/api/templates"): ("viewer", "-"),
    ("GET", "/api/providers"): ("viewer", "-"),
    ("GET", "/api/runtime/status"): ("viewer", "-"),
    ("GET", "/api/metrics"): ("viewer", "-"),
    ("GET", "/api/agents"): ("viewer", "-"),
    ("POST", "/api/agents"): ("operator", "-"),
    ("POST", "/api/agents/start-all"): ("operator", "-"),
    ("POST", "/api/agents/stop-all"): ("operator", "-"),
    ("POST", "/api/apply"): ("operator", "-"),
    ("GET", "/api/agents/{id}"): ("viewer", "agent"),
    ("PUT", "/api/agents/{id}"): ("operator", "agent"),
    ("DELETE", "/api/agents/{id}"): ("operator", "agent"),
    ("POST", "/api/agents/{id}/start"): ("operator", "agent"),
    ("POST", "/api/agents/{id}/stop"): ("operator", "agent"),
    ("GET", "/api/agents/{id}/logs"): ("viewer", "agent"),
    ("GET", "/api/agents/{id}/metrics"): ("viewer", "agent"),
    ("GET", "/api/agents/{id}/health"): ("viewer", "agent"),
    ("GET", "/api/secrets"): ("admin", "-"),
    ("POST", "/api/secrets"): ("admin", "-"),
    ("DELETE", "/api/secrets/{name}"): ("admin", "-"),
    ("GET", "/api/agents/{id}/secrets"): ("viewer", "agent"),
    ("POST", "/api/agents/{id}/secrets"): ("operator", "agent"),
    ("DELETE", "/api/agents/{id}/secrets/{name}"): ("operator", "agent"),
    ("POST", "/api/agents/import"): ("operator", "star"),
    ("GET", "/api/agents/{id}/export"): ("operator", "agent"),
    ("GET", "/api/agents/{id}/snapshots"): ("viewer", "agent"),
    ("POST", "/api/agents/{id}/snapshots"): ("operator", "agent"),
    ("GET", "/api/agents/{id}/snapshots/{sid}"): ("viewer", "agent"),
    ("DELETE", "/api/agents/{id}/snapshots/{sid}"): ("operator", "agent"),
    ("POST", "/api/agents/{id}/snapshots/{sid}/restore"): ("operator", "agent"),
    ("POST", "/api/agents/{id}/snapshots/{sid}/clone"): ("operator", "agent"),
    ("GET", "/api/teams"): ("viewer", "-"),
    ("POST", "/api/teams/reload"): ("operator", "star"),
    ("GET", "/api/teams/{id}"): ("viewer", "team"),
    ("POST", "/api/teams/{id}/classify"): ("viewer", "team"),
    ("WS", "/api/teams/{id}/chat"): ("viewer", "team"),
    ("WS", "/api/agents/{id}/chat"): ("viewer", "agent"),
    ("WS", "/api/agents/{id}/logs/stream"): ("viewer", "agent"),
    ("GET", "/api/users"): ("admin", "-"),
    ("POST", "/api/users"): ("admin", "-"),
    ("GET", "/api/users/{name}"): ("admin", "-"),
    ("PATCH", "/api/users/{name}"): ("admin", "-"),
    ("DELETE", "/api/users/{name}"): ("admin", "-"),
    ("GET", "/api/me"): ("viewer", "-"),
    ("GET", "/api/tokens"): ("viewer", "-"),
    ("POST", "/api/tokens"): ("viewer", "-"),
    ("DELETE", "/api/tokens/{id}"): ("viewer", "-"),
    ("GET", "/api/audit"): ("admin", "-"),
}
ROLE_ORDER = ["viewer", "operator", "admin"]
TEAM_TOML = """
[team]
id = "{name}"
name = "{name}"
[router]
mode = "keyword"
[agents]
main = {{ agent = "{agent}", description = "everything" }}
[routing.main]
keywords = ["hello"]
"""


def _routes() -> list[tuple[str, str]]:
    out = []
    for route in ROUTES:
        path = getattr(route, "path", "")
        methods = getattr(route, "methods", None)
        if methods is None:
            out.append(("WS", path))
        else:
            out.extend((m, path) for m in sorted(methods) if m != "HEAD")
    return out


def test_every_route_declares_a_permission() -> None:
    missing = [getattr(r, "path", repr(r)) for r in ROUTES if declared(r) is None]
    assert missing == [], f"routes without permission= in their route table entry: {missing}"


def test_declarations_match_the_expected_table() -> None:
    """The table's role for each known route is the least role whose actions include the declared one."""
    from api.permissions import ROLE_ACTIONS, Role

    for route in ROUTES:
        need = declared(route)
        assert need is not None
        methods = getattr(route, "methods", None) or {"WS"}
        for method in methods - {"HEAD"}:
            key = (method, getattr(route, "path", ""))
            if key not in EXPECTED:
                continue
            who, _ = EXPECTED[key]
            if who == "public":
                assert need.scope == "public", key
                continue
            least = next(r for r in ROLE_ORDER if need.action in ROLE_ACTIONS[Role(r)])
            assert least == who, f"{key}: declared {need.action} allows {least}, expected {who}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    teams = tmp_path_factory.mktemp("teams")
    (teams / "team-a.toml").write_text(TEAM_TOML.format(name="team-a", agent="a1"))
    (teams / "team-b.toml").write_text(TEAM_TOML.format(name="team-b", agent="b1"))
    server = start_gateway(tmp_path_factory.mktemp("home"), teams_dir=teams)
    admin = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
    with httpx.Client(base_url=server.url, headers=admin, timeout=30) as c:
        for name, project in (("a1", "alpha"), ("b1", "beta")):
            assert c.post("/api/agents", json={"name": name, "project": project, "state": "stopped"}).status_code == 201
        for name, role, pw in (("op", "operator", PASSWORD_OP), ("view", "viewer", PASSWORD_VIEW)):
            answer = c.post("/api/users", json={"name": name, "password": pw, "role": role, "projects": ["alpha"]})
            assert answer.status_code == 201, answer.text
        callers: dict[str, dict[str, str]] = {"admin": admin, "none": {}}
        for name, pw in (("op", PASSWORD_OP), ("view", PASSWORD_VIEW)):
            answer = httpx.post(f"{server.url}/auth/login", json={"username": name, "password": pw})
            assert answer.status_code == 200, answer.text
            callers[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        # API tokens: the admin's, narrowed to operator on alpha; the operator's, narrowed to viewer.
        answer = c.post("/api/tokens", json={"name": "ci", "role": "operator", "projects": ["alpha"]})
        assert answer.status_code == 201, answer.text
        callers["admin-token-as-op"] = {"Authorization": f"Bearer {answer.json()['token']}"}
        answer = httpx.post(f"{server.url}/api/tokens", json={"name": "ro", "role": "viewer"}, headers=callers["op"])
        assert answer.status_code == 201, answer.text
        callers["op-token-as-viewer"] = {"Authorization": f"Bearer {answer.json()['token']}"}
    yield {"server": server, "callers": callers, "admin": admin}
    server.stop()


# caller -> (role, projects granted or "*")
CALLERS = {
    "admin": ("admin", "*"),
    "op": ("operator", "alpha"),
    "view": ("viewer", "alpha"),
    "admin-token-as-op": ("operator", "alpha"),
    "op-token-as-viewer": ("viewer", "alpha"),
    "none": (None, None),
}


def _allowed(caller: str, key: tuple[str, str], target_project: str) -> bool:
    who, on = EXPECTED[key]
    if who == "public":
        return True
    role, projects = CALLERS[caller]
    if role is None or ROLE_ORDER.index(role) < ROLE_ORDER.index(who):
        return False
    if on == "star":
        return projects == "*"
    if on in ("agent", "team"):
        return projects == "*" or projects == target_project
    return True


def _fill(path: str, target: str) -> str:
    agent = "a1" if target == "alpha" else "b1"
    team = "team-a" if target == "alpha" else "team-b"
    return (
        path.replace("{id}", team if path.startswith("/api/teams") else agent)
        .replace("{name}", "nobody")
        .replace("{sid}", "s-none")
    )


async def _ws_outcome(url: str, headers: dict[str, str]) -> int | None:
    """The close code when the server closes at once (4401/4403 on refusal), else None."""
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 1))  # refusals come at once
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None
        if frame.get("error") in ("unauthorized", "forbidden"):
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
        return None


def _restore(world: dict[str, Any]) -> None:
    """Put back what an allowed DELETE may have removed, so later checks see the same world."""
    c = httpx.Client(base_url=world["server"].url, headers=world["admin"], timeout=30)
    with c:
        for name, project in (("a1", "alpha"), ("b1", "beta")):
            if c.get(f"/api/agents/{name}").status_code == 404:
                c.post("/api/agents", json={"name": name, "project": project, "state": "stopped"})


@pytest.mark.parametrize("caller", list(CALLERS))
def test_route_role_matrix(world: dict[str, Any], caller: str) -> None:
    server: ServerThread = world["server"]
    headers = world["callers"][caller]
    wrong: list[str] = []
    for key in _routes():
        if key not in EXPECTED:
            continue  # another feature's route: covered by test_every_route_declares_a_permission
        method, template = key
        targets = ["alpha", "beta"] if EXPECTED[key][1] in ("agent", "team") else ["alpha"]
        for target in targets:
            path = _fill(template, target)
            expect = _allowed(caller, key, target)
            if method == "WS":
                code = asyncio.run(_ws_outcome(server.ws_url + path, headers))
                refused = code in (4401, 4403)
                expected_code = 4401 if caller == "none" else 4403
                if expect == refused or (not expect and code != expected_code):
                    wrong.append(f"WS {path}: close code {code}, expected {'allowed' if expect else expected_code}")
                continue
            answer = httpx.request(method, server.url + path, headers=headers, json=None, timeout=30)
            refused = answer.status_code in (401, 403)
            if EXPECTED[key][0] == "public":
                refused = answer.status_code == 401 and "access token" in answer.text  # the guard's refusal
            if expect and refused:
                wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:120]}")
            elif not expect:
                want = 401 if caller == "none" else 403
                if answer.status_code != want:
                    wrong.append(f"{method} {path}: {answer.status_code}, expected {want}")
                elif want == 403 and "missing_permission" not in answer.json().get("detail", {}):
                    wrong.append(f"{method} {path}: 403 without naming the missing permission: {answer.text}")
            if method == "DELETE" and answer.status_code < 300:
                _restore(world)
    assert wrong == [], "\n".join(wrong)


def test_lists_show_only_granted_projects(world: dict[str, Any]) -> None:
    url = world["server"].url
    for caller in ("op", "view", "op-token-as-viewer"):
        headers = world["callers"][caller]
        names = [a["id"] if "id" in a else a["name"] for a in httpx.get(f"{url}/api/agents", headers=headers).json()]
        assert names == ["a1"], (caller, names)
        teams = [t["id"] if "id" in t else t["name"] for t in httpx.get(f"{url}/api/teams", headers=headers).json()]
        assert teams == ["team-a"], (caller, teams)
    everything = httpx.get(f"{url}/api/agents", headers=world["admin"]).json()
    assert len(everything) == 2


def test_cached_list_answers_stay_per_caller_and_follow_changes(world: dict[str, Any]) -> None:
    """The list route caches whole answers: one caller's answer must never reach another, and a
    change must reach every caller's next answer (plain and paged)."""
    url, op, admin = world["server"].url, world["callers"]["op"], world["admin"]

    def names(headers: dict[str, str], **params: str) -> list[str]:
        answer = httpx.get(f"{url}/api/agents", headers=headers, params=params)
        assert answer.status_code == 200, answer.text
        return [a["id"] for a in answer.json()]

    for _ in range(3):  # interleaved, same query
        assert names(op) == ["a1"]
        assert names(admin) == ["a1", "b1"]
    body = {"name": "a2", "project": "alpha", "state": "stopped"}
    assert httpx.post(f"{url}/api/agents", json=body, headers=admin).status_code == 201
    try:
        assert names(op) == ["a1", "a2"]
        assert names(admin) == ["a1", "a2", "b1"]
        first = httpx.get(f"{url}/api/agents", headers=op, params={"limit": "1"})
        assert [a["id"] for a in first.json()] == ["a1"]
        assert names(op, limit="1", **{"continue": first.headers["x-continue"]}) == ["a2"]
    finally:
        assert httpx.delete(f"{url}/api/agents/a2", headers=admin).status_code == 204
    assert names(op) == ["a1"]


def test_operator_cannot_create_or_move_agents_outside_its_projects(world: dict[str, Any]) -> None:
    url, op = world["server"].url, world["callers"]["op"]
    answer = httpx.post(f"{url}/api/agents", json={"name": "c1", "project": "beta"}, headers=op)
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"] == {"missing_permission": "agents:write", "project": "beta"}
    answer = httpx.put(f"{url}/api/agents/a1", json={"project": "beta"}, headers=op)
    assert answer.status_code == 403, answer.text
    answer = httpx.post(f"{url}/api/agents", json={"name": "c2", "project": "alpha", "state": "stopped"}, headers=op)
    assert answer.status_code == 201, answer.text
    assert httpx.delete(f"{url}/api/agents/c2", headers=op).status_code == 204


def test_a_token_cannot_exceed_its_owner(world: dict[str, Any]) -> None:
    url, view = world["server"].url, world["callers"]["view"]
    answer = httpx.post(f"{url}/api/tokens", json={"name": "up", "role": "operator"}, headers=view)
    assert answer.status_code == 403, answer.text
    answer = httpx.post(f"{url}/api/tokens", json={"name": "wide", "projects": ["beta"]}, headers=view)
    assert answer.status_code == 403, answer.text
