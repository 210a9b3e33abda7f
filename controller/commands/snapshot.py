"""`clawpen snapshot create|list|restore|delete|clone`, `clawpen export` and `clawpen import`.

Copies of large volumes take a while, so every command that moves data reports progress on stderr
(a single updating line on a terminal, a line every few seconds otherwise), keeping stdout for
results and for `clawpen export -o -` streams.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from controller.commands._common import settings, table
from controller.snapshot_export import clone_agent, export_agent, import_agent, snapshot_agent
from controller.snapshots import Snapshots
from controller.wiring import open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("snapshot", help="snapshots of an agent's /data and /workspace")
    cmds = group.add_subparsers(dest="snapshot_command", required=True, metavar="ACTION")

    p = cmds.add_parser("create", help="snapshot an agent now (paused around the copy)")
    p.add_argument("agent", help="the agent's name")
    p.set_defaults(handler=cmd_create)

    p = cmds.add_parser("list", help="an agent's snapshots, newest first")
    p.add_argument("agent", help="the agent's name")
    p.set_defaults(handler=cmd_list)

    p = cmds.add_parser("restore", help="replace the agent's volumes with a snapshot's content")
    p.add_argument("agent", help="the agent's name")
    p.add_argument("id", help="snapshot id (see `clawpen snapshot list AGENT`)")
    p.set_defaults(handler=cmd_restore)

    p = cmds.add_parser("delete", help="delete a snapshot")
    p.add_argument("agent", help="the agent's name")
    p.add_argument("id", help="snapshot id (see `clawpen snapshot list AGENT`)")
    p.set_defaults(handler=cmd_delete)

    p = cmds.add_parser("clone", help="create a new agent from a snapshot")
    p.add_argument("agent", help="the agent's name")
    p.add_argument("id", help="snapshot id (see `clawpen snapshot list AGENT`)")
    p.add_argument("new_name", help="name of the new agent")
    p.set_defaults(handler=cmd_clone)

    p = sub.add_parser("export", help="write an agent (spec and data) to one archive")
    p.add_argument("agent", help="the agent's name")
    p.add_argument("-o", "--output", help="file to write ('-' for stdout; default AGENT.clawpen.tar)")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("import", help="recreate an agent from an archive made by `clawpen export`")
    p.add_argument("file", help="the archive ('-' for stdin)")
    p.add_argument("--name", help="import under another name")
    p.set_defaults(handler=cmd_import)


class ProgressLine:
    """Progress on stderr: rewritten in place on a terminal, throttled lines otherwise."""

    def __init__(self, stream: IO[str] | None = None, interval: float | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else 2.0)
        self._last = 0.0
        self._shown = False

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - self._last < self.interval:
            return
        self._last = now
        text = f"{phase}: {_size(done)}" + (f" / {_size(total)} ({100 * done // max(total, 1)}%)" if total else "")
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self._shown = True
        self.stream.flush()

    def close(self) -> None:
        if self._shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@contextlib.contextmanager
def _progress() -> Iterator[ProgressLine]:
    line = ProgressLine()
    try:
        yield line
    finally:
        line.close()


def _snaps() -> Snapshots:
    return Snapshots(settings())


async def cmd_create(args: argparse.Namespace) -> int:
    store = open_store(settings())
    try:
        with _progress() as progress:
            info = await snapshot_agent(store, _snaps(), args.agent, progress=progress)
    finally:
        await store.close()
    print(f"snapshot {info.id} of agent {info.agent_id}: {_size(info.size_bytes)}, sha256 {info.sha256[:12]}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = [
        [i.id, i.created_at.isoformat(), _size(i.size_bytes), i.sha256[:12]] for i in _snaps().list(args.agent)
    ]
    print(table(rows, ["ID", "CREATED", "SIZE", "SHA256"]))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    with _progress() as progress:
        info = _snaps().restore(args.agent, args.id, progress=progress)
    print(f"agent {args.agent} restored from snapshot {info.id}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _snaps().delete(args.agent, args.id)
    print(f"snapshot {args.id} of agent {args.agent} deleted")
    return 0


async def cmd_clone(args: argparse.Namespace) -> int:
    store = open_store(settings())
    try:
        with _progress() as progress:
            agent = await clone_agent(store, _snaps(), args.agent, args.id, args.new_name, progress)
    finally:
        await store.close()
    print(f"agent/{agent.name} created from snapshot {args.id} of {args.agent}")
    return 0


async def cmd_export(args: argparse.Namespace) -> int:
    target = args.output or f"{args.agent}.clawpen.tar"
    store = open_store(settings())
    try:
        with _progress() as progress:
            if target == "-":
                info = await export_agent(store, _snaps(), args.agent, sys.stdout.buffer, progress=progress)
            else:
                path = Path(target)
                partial = path.with_name(f".{path.name}.partial")
                try:
                    # 0600: an export holds the agent's conversations and files.
                    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                        info = await export_agent(store, _snaps(), args.agent, out, progress=progress)
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(partial, path)
                except BaseException:
                    partial.unlink(missing_ok=True)
                    raise
    finally:
        await store.close()
    if target != "-":
        print(f"agent {args.agent} exported to {target} (snapshot {info.id}, {_size(info.size_bytes)} of data)")
    return 0


async def cmd_import(args: argparse.Namespace) -> int:
    cfg = settings()
    store = open_store(cfg)
    try:
        with _progress() as progress, _open_input(args.file) as src:
            agent = await import_agent(store, _snaps(), src, args.name, progress, max_bytes=cfg.import_max_bytes)
    finally:
        await store.close()
    print(f"agent/{agent.name} imported")
    return 0


@contextlib.contextmanager
def _open_input(name: str) -> Iterator[BinaryIO]:
    if name == "-":
        yield sys.stdin.buffer
        return
    with open(name, "rb") as fh:
        yield fh
