"""`clawpen secrets set|list|delete|rotate-key`: the secret store from the command line.

A value is never a command-line argument (it would sit in the shell history and in every process
listing): `set` reads it from stdin when piped, or prompts for it without echo on a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from controller.secrets import KEY_ENV, SecretStore, decode_key
from controller.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("secrets", help="manage encrypted secrets (global or per agent)")
    cmds = group.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")

    p = cmds.add_parser("set", help="create or replace a secret; the value comes from stdin or a prompt")
    p.add_argument("name", help="secret name: [A-Za-z0-9_.-]{1,64}, no '..'")
    # Accepted only to refuse it with a helpful message (argparse would just say "unrecognized").
    p.add_argument("value", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--agent", help="the agent that owns it (default: a global secret)")
    p.add_argument("--raw", action="store_true", help="keep stdin exactly (no trailing newline removed)")
    p.set_defaults(handler=cmd_set)

    p = cmds.add_parser("list", help="list secrets, global and per agent (names and metadata, never values)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--agent", help="only this agent's own secrets")
    scope.add_argument("--global", dest="global_only", action="store_true", help="only the global secrets")
    scope.add_argument("--all", action="store_true", help="global and every agent's secrets (the default)")
    p.set_defaults(handler=cmd_list)

    p = cmds.add_parser("delete", help="delete a secret")
    p.add_argument("name", help="the secret's name")
    p.add_argument("--agent", help="the agent that owns it (default: a global secret)")
    p.set_defaults(handler=cmd_delete)

    p = cmds.add_parser("rotate-key", help="re-encrypt every secret under a new key")
    p.add_argument(
        "--new-key-stdin",
        action="store_true",
        help=f"read the new key (base64 of 32 bytes) from stdin; required when {KEY_ENV} is set",
    )
    p.set_defaults(handler=cmd_rotate)


def _store() -> SecretStore:
    return SecretStore.from_settings(Settings.from_env())


def _read_value(raw: bool) -> bytes:
    if sys.stdin.isatty():
        print("the value is read here, not from the command line (hidden while you type)", file=sys.stderr)
        first = getpass.getpass("value: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two values differ; nothing was stored")
        return first.encode()
    data = sys.stdin.buffer.read()
    if not raw:
        data = data.removesuffix(b"\n").removesuffix(b"\r")
    return data


def _warn_unknown_agent(name: str) -> None:
    import asyncio

    from controller.resources import Agent
    from controller.store.base import NotFound
    from controller.wiring import open_store

    async def exists() -> bool:
        store = open_store(Settings.from_env())
        try:
            await store.get(Agent, name)
            return True
        except NotFound:
            return False
        finally:
            await store.close()

    try:
        found = asyncio.run(exists())
    except Exception:  # noqa: BLE001 - the check is advice; the store may be elsewhere (kube)
        return
    if not found:
        print(
            f"warning: there is no agent {name!r} (yet); the secret is kept for an agent of that name",
            file=sys.stderr,
        )


def cmd_set(args: argparse.Namespace) -> int:
    if args.value is not None:
        raise ValueError(
            "a secret's value is never a command-line argument (it would stay in your shell history and "
            f"in every process listing): pipe it in (`printf %s \"$VALUE\" | clawpen secrets set {args.name}`) "
            "or run the command without it and type the value at the prompt"
        )
    store = _store()
    if args.agent:
        _warn_unknown_agent(args.agent)
    info = store.set(args.name, _read_value(args.raw), agent=args.agent)
    where = f"agent {info.agent}" if info.agent else "global"
    print(f"secret {info.name} ({where}) set: version {info.version}, {info.size_bytes} bytes")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _store()
    infos = store.list(args.agent) if args.agent or args.global_only else store.list_all()
    rows = [("NAME", "SCOPE", "AGENT", "VERSION", "SIZE", "UPDATED")]
    rows += [
        (i.name, i.scope, i.agent or "-", i.version, str(i.size_bytes), i.updated_at.isoformat())
        for i in infos
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _store().delete(args.name, agent=args.agent)
    print(f"secret {args.name} deleted")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    store = _store()
    new_key = decode_key(sys.stdin.read(), "the new key on stdin") if args.new_key_stdin else None
    if store.key_from_env and new_key is None:
        raise ValueError(
            f"{KEY_ENV} is set, so the new key cannot be kept in the key file: generate one "
            f"(e.g. `head -c32 /dev/urandom | base64`), pass it with --new-key-stdin, then update {KEY_ENV}"
        )
    count = len(store.list_all())
    store.rotate_key(new_key)
    if store.key_from_env:
        print(f"{count} secrets re-encrypted; now set {KEY_ENV} to the new key before the next start")
    else:
        print(f"{count} secrets re-encrypted; new key in {store.key_file}")
    return 0
