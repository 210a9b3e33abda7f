"""`clawpen users add|list|set-role|disable|enable|delete`: the gateway's users, edited in place.

Like `clawpen admin set-password`, these work on the users file under $CLAWPEN_HOME directly (the
running gateway sees a change on its next request), so an admin can add the first users before the
gateway ever starts. Passwords come from a prompt or the first line of stdin, never an argument
(arguments end up in shell history and `ps`). In Kubernetes mode run them in the gateway's Pod
(`kubectl exec deploy/clawpen-gateway -- clawpen users ...`), where its volume holds the file.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from controller.cli import CommandError
from controller.settings import Settings

ROLES = ("admin", "operator", "viewer")


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="manage the gateway's users (roles: admin, operator, viewer)")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a user; the password is read from a prompt or stdin")
    add.add_argument("name", help="the user's login name")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument("--project", action="append", help="a granted project (repeat; default: all = '*')")
    add.set_defaults(handler=add_user)
    actions.add_parser("list", help="list users").set_defaults(handler=list_users)
    role = actions.add_parser("set-role", help="change a user's role (and projects with --project)")
    role.add_argument("name", help="the user's login name")
    role.add_argument("role", choices=ROLES, help="admin, operator or viewer")
    role.add_argument("--project", action="append", help="replace the granted projects (repeat)")
    role.set_defaults(handler=set_role)
    for verb, enabled in (("disable", False), ("enable", True)):
        p = actions.add_parser(verb, help=f"{verb} a user (disabling ends its sessions and API tokens at once)")
        p.add_argument("name", help="the user's login name")
        p.set_defaults(handler=lambda a, e=enabled: set_enabled(a, e))
    delete = actions.add_parser("delete", help="delete a user and its API tokens")
    delete.add_argument("name", help="the user's login name")
    delete.set_defaults(handler=delete_user)
    passwd = actions.add_parser("set-password", help="set a user's password (prompt or stdin)")
    passwd.add_argument("name", help="the user's login name")
    passwd.set_defaults(handler=set_password)


def _stores() -> tuple[object, object]:
    from controller.users.store import UserStore
    from controller.users.tokens import ApiTokenStore

    home = Settings.from_env().ensure_home()
    return UserStore(home), ApiTokenStore(home)


def _password(name: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password for {name} (at least 12 characters): ")
        if getpass.getpass("Repeat it: ") != first:
            raise CommandError("the two passwords differ; nothing changed")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _hash(password: str) -> str:
    from argon2 import PasswordHasher

    from api.auth import PasswordRuleError, check_password_rules

    try:
        check_password_rules(password)
    except PasswordRuleError as err:
        raise CommandError(f"{err}; nothing changed") from None
    return PasswordHasher().hash(password)


def add_user(args: argparse.Namespace) -> int:
    from controller.users.store import User, UserStore

    users, _ = _stores()
    assert isinstance(users, UserStore)
    try:
        user = User(name=args.name, role=args.role, projects=args.project or ["*"])
    except ValueError as err:
        raise CommandError(str(err).splitlines()[-1].strip()) from None
    user.password_hash = _hash(_password(args.name))
    users.create(user)
    print(f"user {user.name} added ({user.role}, projects {', '.join(user.projects)})")
    return 0


def list_users(args: argparse.Namespace) -> int:
    from controller.users.store import UserStore

    users, _ = _stores()
    assert isinstance(users, UserStore)
    rows = [("NAME", "ROLE", "PROJECTS", "ENABLED", "SOURCE"), ("admin", "admin", "*", "yes", "built-in")]
    rows += [(u.name, u.role, ",".join(u.projects), "yes" if u.enabled else "no", u.source) for u in users.list()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _update(name: str, changes: dict[str, object]) -> None:
    from controller.users.store import ADMIN_NAME, UserStore

    if name == ADMIN_NAME:
        raise CommandError("the built-in admin cannot be changed here (use `clawpen admin set-password`)")
    users, _ = _stores()
    assert isinstance(users, UserStore)
    users.update(name, changes)


def set_role(args: argparse.Namespace) -> int:
    changes: dict[str, object] = {"role": args.role}
    if args.project:
        changes["projects"] = args.project
    _update(args.name, changes)
    print(f"user {args.name} is now {args.role}")
    return 0


def set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    _update(args.name, {"enabled": enabled})
    print(f"user {args.name} {'enabled' if enabled else 'disabled'}")
    return 0


def set_password(args: argparse.Namespace) -> int:
    _update(args.name, {"password_hash": _hash(_password(args.name))})
    print(f"password of {args.name} changed (their sessions ended)")
    return 0


def delete_user(args: argparse.Namespace) -> int:
    from controller.users.store import ADMIN_NAME, UserStore
    from controller.users.tokens import ApiTokenStore

    if args.name == ADMIN_NAME:
        raise CommandError("the built-in admin cannot be deleted")
    users, tokens = _stores()
    assert isinstance(users, UserStore) and isinstance(tokens, ApiTokenStore)
    users.delete(args.name)
    revoked = tokens.revoke_owner(args.name)
    print(f"user {args.name} deleted ({revoked} API token(s) revoked)")
    return 0
