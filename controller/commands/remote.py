"""`clawpen login|logout` and the CLI acting through a gateway, with the signed-in user's role.

How roles apply to the CLI (README: "Users, roles and the CLI"):
- On the machine that holds the home, the CLI writes the store directly. Whoever can do that can read
  the home's files (specs, the secret key, the token signing key) anyway, so that CLI is the
  machine's admin, like kubectl with the cluster's admin kubeconfig. No role is checked there.
- Anyone else goes through a gateway: `clawpen login --server URL` (a user name and password from a
  prompt or stdin, or `--token cpt_...`), or CLAWPEN_SERVER (+ CLAWPEN_TOKEN) in the environment.
  Then resource commands are HTTP calls with that credential, and the gateway's one guard decides,
  exactly as for the dashboard or curl: a viewer's `clawpen delete agent x` is a 403.
- While a server is set, a resource command that has no gateway form here is refused rather than
  quietly run against the local store (which would act as the machine's admin, not as the user).

The saved login is a JSON file readable by its owner only (CLAWPEN_CREDENTIALS, default
$XDG_CONFIG_HOME/clawpen/credentials.json); a password is never stored, only the token pair (rotated
on use as the gateway's refresh rules say) or the API token.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

# Commands that manage resources: through a gateway when a server is set (REMOTE), else refused.
REMOTE = {"get", "delete", "start", "stop", "apply", "logs", "describe", "team"}
RESOURCE_COMMANDS = REMOTE | {
    "apply", "diff", "edit", "describe", "wait", "restart", "logs", "top", "chat", "secrets", "snapshot",
    "export", "import", "volumes", "team",
}  # fmt: skip


class RemoteError(Exception):
    """A refusal or failure from the gateway, printed as one line."""


@dataclass
class Credentials:
    server: str
    access_token: str
    refresh_token: str | None = None  # None: an API token (cpt_...), used as is


def credentials_path() -> Path:
    explicit = os.environ.get("CLAWPEN_CREDENTIALS")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "clawpen" / "credentials.json"


def _save(creds: Credentials) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(creds), out)
    tmp.replace(path)


def current() -> Credentials | None:
    """The gateway to act through: CLAWPEN_SERVER (+ CLAWPEN_TOKEN) wins over a saved login."""
    server = os.environ.get("CLAWPEN_SERVER")
    if server:
        token = os.environ.get("CLAWPEN_TOKEN")
        if not token:
            raise RemoteError("CLAWPEN_SERVER is set but CLAWPEN_TOKEN is not (an access or cpt_ API token)")
        return Credentials(server.rstrip("/"), token)
    path = credentials_path()
    if not path.exists():
        return None
    try:
        return Credentials(**json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise RemoteError(f"{path}: not a clawpen login ({err}); run `clawpen logout`") from None


def _error(answer: httpx.Response) -> RemoteError:
    try:
        message = answer.json().get("error") or answer.text
    except ValueError:
        message = answer.text
    return RemoteError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {message}")


class Gateway:
    def __init__(self, creds: Credentials, saved: bool):
        self.creds = creds
        self.saved = saved
        self.http = httpx.Client(base_url=creds.server, timeout=30, trust_env=False)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.creds.access_token}"}
            try:
                answer = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as err:
                raise RemoteError(f"cannot reach the gateway at {self.creds.server}: {err}") from None
            if answer.status_code == 401 and attempt == 0 and self.creds.refresh_token:
                self._refresh()
                continue
            if answer.status_code == 401:
                raise RemoteError(f"{_error(answer)} (log in again: `clawpen login --server {self.creds.server}`)")
            if answer.status_code >= 400:
                raise _error(answer)
            return answer
        raise RemoteError("unreachable")

    def _refresh(self) -> None:
        answer = self.http.post("/auth/refresh", json={"refresh_token": self.creds.refresh_token})
        if answer.status_code != 200:
            raise RemoteError(f"the session expired ({answer.status_code}); run `clawpen login` again")
        body = answer.json()
        self.creds.access_token, self.creds.refresh_token = body["access_token"], body["refresh_token"]
        if self.saved:
            _save(self.creds)


# ---- commands ------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("login", help="sign in to a gateway; later commands act there with your role")
    p.add_argument("--server", required=True, help="the gateway's URL, e.g. http://127.0.0.1:3000")
    p.add_argument("-u", "--username", help="user name (default: the built-in admin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin, not a prompt")
    p.add_argument("--token", help="an API token (cpt_...) instead of a password; '-' reads it from stdin")
    p.set_defaults(handler=cmd_login)
    p = sub.add_parser("logout", help="forget the saved gateway login (commands work on the local home again)")
    p.set_defaults(handler=cmd_logout)


def cmd_login(args: argparse.Namespace) -> int:
    server = args.server.rstrip("/")
    if args.token:
        token = sys.stdin.readline().strip() if args.token == "-" else args.token
        creds = Credentials(server, token)
        who = Gateway(creds, saved=False).call("GET", "/api/me").json()
    else:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"Password for {args.username or 'admin'} at {server}: ")
        body = {"password": password, **({"username": args.username} if args.username else {})}
        try:
            answer = httpx.post(f"{server}/auth/login", json=body, timeout=30, trust_env=False)
        except httpx.HTTPError as err:
            raise RemoteError(f"cannot reach the gateway at {server}: {err}") from None
        if answer.status_code != 200:
            raise _error(answer)
        pair = answer.json()
        creds = Credentials(server, pair["access_token"], pair["refresh_token"])
        who = Gateway(creds, saved=False).call("GET", "/api/me").json()
    _save(creds)
    projects = ", ".join(who["projects"])
    print(f"logged in to {server} as {who['name']} ({who['role']}; projects: {projects})")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    path = credentials_path()
    if path.exists():
        path.unlink()
        print(f"logged out (removed {path})")
    else:
        print("not logged in")
    return 0


def route(args: argparse.Namespace) -> Any:
    """The handler to run: the gateway form of a resource command when a server is set."""
    if args.command not in RESOURCE_COMMANDS:
        return None
    creds = current()
    if creds is None:
        return None
    if args.command not in REMOTE:
        raise RemoteError(
            f"`clawpen {args.command}` works on the local home only, but a gateway is set ({creds.server}); "
            f"through a gateway: {', '.join(sorted(REMOTE))} (or the REST API). `clawpen logout` / unset "
            "CLAWPEN_SERVER to work locally as this machine's admin"
        )
    gateway = Gateway(creds, saved=not os.environ.get("CLAWPEN_SERVER"))
    return lambda a: REMOTE_HANDLERS[a.command](gateway, a)


def _agent_names(kind: str | None, names: list[str]) -> list[str]:
    if kind and "/" in kind:
        head, _, name = kind.partition("/")
        kind, names = head, [name, *names]
    if kind not in ("agent", "agents", "ag"):
        raise RemoteError(f"through a gateway only agents are supported here, not {kind!r}")
    if not names:
        raise RemoteError("name at least one agent")
    return names


def remote_get(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.watch or args.selector:
        raise RemoteError("get -w / -l work on the local home only")
    kind, names = args.kind, list(args.names)
    if "/" in kind:
        kind, _, name = kind.partition("/")
        names.insert(0, name)
    if kind not in ("agent", "agents", "ag"):
        raise RemoteError(f"through a gateway only agents are supported here, not {kind!r}")
    agents = [gateway.call("GET", f"/api/agents/{n}").json() for n in names] if names else (
        gateway.call("GET", "/api/agents").json()
    )
    if args.output == "json":
        print(json.dumps(agents, indent=2))
    elif args.output == "name":
        print("\n".join(f"agent/{a['name']}" for a in agents))
    else:
        from controller.commands._common import table

        rows = [
            [a["name"], a["status"], a["desired_state"], a.get("project") or "default",
             " / ".join(filter(None, [a["config"].get("llm_provider"), a["config"].get("llm_model")])) or "-"]
            for a in agents
        ]  # fmt: skip
        print(table(rows, ["NAME", "STATUS", "DESIRED", "PROJECT", "MODEL"], headers=not args.no_headers))
    return 0


def remote_delete(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.filename:
        raise RemoteError("delete -f works on the local home only; name the agents instead")
    for name in _agent_names(args.kind, list(args.names)):
        gateway.call("DELETE", f"/api/agents/{name}")
        print(f"agent/{name} deleted")
    return 0


def remote_set_state(gateway: Gateway, args: argparse.Namespace) -> int:
    for name in args.names:
        gateway.call("POST", f"/api/agents/{name}/{args.command}")
        print(f"agent/{name} {'started' if args.command == 'start' else 'stopped'}")
    return 0


def _manifest(obj: Any) -> dict[str, Any]:
    doc: dict[str, Any] = obj.dump()
    doc.pop("status", None)
    if doc["metadata"].get("namespace") == "default":  # the model's default: let the gateway use its own
        doc["metadata"].pop("namespace")
    return doc


def _apply_one(gateway: Gateway, label: str, doc: dict[str, Any], dry_run: bool) -> str:
    try:
        answer = gateway.call("POST", "/api/apply", params={"dryRun": str(dry_run).lower()}, json=doc)
    except RemoteError as err:
        raise RemoteError(f"{label}: {err} (nothing was applied)" if dry_run else f"{label}: {err}") from None
    return str(answer.json()["result"])


def remote_apply(gateway: Gateway, args: argparse.Namespace) -> int:
    """`clawpen apply -f` through POST /api/apply: the gateway judges each document with its catalog,
    policy and the caller's role. Every document is dry-run first, so a refusal anywhere (a 403, a 422)
    means nothing is written, as with the local apply."""
    from controller.commands.resources import load_documents

    docs = [(f"{o.KIND.lower()}/{o.name}", _manifest(o)) for o in load_documents(args.filename)]
    results = [_apply_one(gateway, label, doc, dry_run=True) for label, doc in docs]
    if not args.dry_run:
        results = [_apply_one(gateway, label, doc, dry_run=False) for label, doc in docs]
    for (label, _), result in zip(docs, results, strict=True):
        print(f"{label} {result}{' (dry run)' if args.dry_run else ''}")
    return 0


def remote_logs(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.follow:
        raise RemoteError("logs -f works on the local home only (through a gateway: the WebSocket "
                          "/api/agents/{id}/logs/stream)")  # fmt: skip
    for line in gateway.call("GET", f"/api/agents/{args.name}/logs", params={"tail": args.tail}).json():
        print(f"{line.get('timestamp') or ''} {line['level'].upper():<5} {line['message']}")
    return 0


def remote_describe(gateway: Gateway, args: argparse.Namespace) -> int:
    from controller.commands.get import print_description

    [name] = _agent_names(args.kind, [args.name] if args.name else [])
    agent = gateway.call("GET", f"/api/agents/{name}").json()
    events = gateway.call("GET", f"/api/agents/{name}/events").json()
    spec = {k: agent[k] for k in ("template", "project", "tags", "desired_state") if agent.get(k)}
    spec["config"] = {k: v for k, v in agent["config"].items() if v not in (None, [], {})}
    status = {k: agent[k] for k in ("status", "message", "endpoint", "restart_count", "observed_generation")}
    conditions = [
        {"type": c["type"], "status": c["status"], "reason": c.get("reason", ""),
         "lastTransitionTime": c.get("last_transition_time") or "", "message": c.get("message", "")}
        for c in agent["conditions"]
    ]  # fmt: skip
    print_description(
        name, "Agent", agent.get("labels") or {}, agent.get("generation"), agent.get("created_at"),
        spec, {k: v for k, v in status.items() if v not in (None, "")}, conditions, events,
    )  # fmt: skip
    return 0


def remote_team(gateway: Gateway, args: argparse.Namespace) -> int:
    from controller.commands.team import render_classification

    if args.team_command != "classify":
        raise RemoteError(f"`clawpen team {args.team_command}` works on the local home only")
    body = gateway.call("POST", f"/api/teams/{args.name}/classify", json={"message": args.message}).json()
    print(json.dumps(body, indent=2) if args.output == "json" else render_classification(body))
    return 0


REMOTE_HANDLERS = {
    "get": remote_get, "delete": remote_delete, "start": remote_set_state, "stop": remote_set_state,
    "apply": remote_apply, "logs": remote_logs, "describe": remote_describe, "team": remote_team,
}  # fmt: skip
