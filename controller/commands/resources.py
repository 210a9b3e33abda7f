"""kubectl-like commands that change resources: apply, diff, edit, delete, start, stop, restart, logs.

These only write specs (and read logs from the runtime; restart removes a container for the
controller to replace): the controller makes them true, exactly as with `kubectl apply` against a
cluster. Everything a file holds is validated (schema, catalog names, the volume and interpolation
policy) before anything is written.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from controller import presence
from controller.catalog import unknown_names
from controller.commands._common import add_namespace, namespace_of, resource_class, settings
from controller.resources import Agent, DesiredState, ManifestError, Resource
from controller.store.apply import apply_resource
from controller.store.base import NotFound, Store
from controller.volume_policy import import_policy
from controller.wiring import open_catalog, open_runtime, open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for verb, help_text in (
        ("apply", "create or update resources from YAML files, a directory, or stdin (-f -)"),
        ("diff", "show what `apply -f` would change (exit 1 when something would)"),
    ):
        p = sub.add_parser(verb, help=help_text, description=help_text)
        p.add_argument(
            "-f", "--filename", required=True, action="append", help="file, directory or - for stdin (repeatable)"
        )
        if verb == "apply":
            p.add_argument("--dry-run", action="store_true", help="validate and say what would change; write nothing")
        p.set_defaults(handler=cmd_apply if verb == "apply" else cmd_diff)

    p = sub.add_parser("delete", help="delete resources (agent volumes are kept unless --volumes)")
    p.add_argument("kind", nargs="?", help="agent | team, or TYPE/NAME")
    p.add_argument("names", nargs="*", metavar="NAME", help="one or more names")
    p.add_argument("-f", "--filename", action="append", help="delete what these files or directories define")
    p.add_argument("--volumes", action="store_true", help="also remove the agents' /data and /workspace volumes")
    add_namespace(p)
    p.set_defaults(handler=cmd_delete)

    for verb, state in (("start", DesiredState.RUNNING), ("stop", DesiredState.STOPPED)):
        p = sub.add_parser(verb, help=f"set agents' spec.state to {state.value}")
        p.add_argument("names", nargs="+", metavar="NAME", help="agent name(s)")
        add_namespace(p)
        p.set_defaults(handler=cmd_set_state, state=state)

    p = sub.add_parser("restart", help="replace agents' containers (volumes kept; the controller recreates them)")
    p.add_argument("names", nargs="+", metavar="NAME", help="agent name(s)")
    add_namespace(p)
    p.set_defaults(handler=cmd_restart)

    p = sub.add_parser("logs", help="an agent's container logs")
    p.add_argument("name", help="the agent's name")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("--tail", type=int, default=100, help="lines from the end (default 100)")
    add_namespace(p)
    p.set_defaults(handler=cmd_logs)


# ---- reading manifests --------------------------------------------------------------------------


def load_documents(filenames: list[str]) -> list[Resource]:
    """Every resource in the files, directories (or stdin for `-`), schema-validated. What the
    installation allows (catalog names, policy) is judged by whoever writes: read_manifests here,
    the gateway's POST /api/apply for `clawpen apply` through a gateway."""
    from controller.manifests import LOADERS, load_manifests
    from controller.resources import parse_resource

    objs: list[Resource] = []
    for name in filenames:
        if name == "-":
            documents = LOADERS[".yaml"](Path("-"), sys.stdin.read())
            for index, doc in enumerate(documents, start=1):
                if doc is not None:
                    try:
                        objs.append(parse_resource(doc))
                    except ManifestError as err:
                        raise ManifestError(f"stdin: document {index}: {err}") from None
        else:
            objs += load_manifests(Path(name))
    return objs


def read_manifests(filenames: list[str]) -> list[Resource]:
    """Every resource in the files (or stdin for `-`), schema- and catalog-validated: a bad name
    anywhere means nothing is written."""
    objs = load_documents(filenames)
    cfg = settings()
    catalog = open_catalog(cfg)
    # The installation's volume and interpolation policy, judged here as the API judges REST specs,
    # so a manifest that breaks it is refused up front instead of landing and going Failed later
    # (the controller still judges again: files dropped into the store, a policy changed since).
    policy = import_policy(cfg)
    problems = []
    for obj in objs:
        if isinstance(obj, Agent):
            for field, message in unknown_names(catalog, obj.spec.template, obj.spec.provider):
                problems.append(f"agent/{obj.name}: spec.{field}: {message}")
            problems += [f"agent/{obj.name}: {problem}" for problem in policy(obj)]
    if problems:
        raise ManifestError("; ".join(problems) + " (nothing was applied)")
    return objs


async def cmd_apply(args: argparse.Namespace) -> int:
    objs = read_manifests(args.filename)
    store = open_store(settings())
    try:
        for obj in objs:
            result = await apply_resource(store, obj, dry_run=args.dry_run)
            suffix = " (dry run)" if args.dry_run else ""
            print(f"{obj.kind.lower()}/{obj.name} {result}{suffix}")  # type: ignore[attr-defined]
    finally:
        await store.close()
    return 0


def spec_text(obj: Resource | None) -> list[str]:
    """What a diff compares: the user-owned part (metadata.name/labels/annotations, spec)."""
    if obj is None:
        return []
    from controller.store.specfile import render_spec

    return render_spec(obj).decode().splitlines(keepends=True)


async def cmd_diff(args: argparse.Namespace) -> int:
    import difflib

    objs = read_manifests(args.filename)
    store = open_store(settings())
    changed = False
    try:
        for obj in objs:
            try:
                current: Resource | None = await store.get(type(obj), obj.name, obj.metadata.namespace)
            except NotFound:
                current = None
            label = f"{obj.KIND.lower()}/{obj.name}"
            lines = list(
                difflib.unified_diff(spec_text(current), spec_text(obj), f"{label} (stored)", f"{label} (file)")
            )
            if lines:
                changed = True
                sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    finally:
        await store.close()
    return 1 if changed else 0


# ---- delete, start, stop, restart ---------------------------------------------------------------


async def cmd_delete(args: argparse.Namespace) -> int:
    targets: list[tuple[type[Resource], str]] = []
    if args.filename:
        if args.kind or args.names:
            raise ValueError("delete takes either -f FILE|DIR or TYPE NAME..., not both")
        from controller.manifests import load_manifests

        for name in args.filename:
            targets += [(type(o), o.name) for o in load_manifests(Path(name))]
    else:
        if not args.kind:
            raise ValueError("delete what? TYPE NAME [NAME...], TYPE/NAME, or -f FILE|DIR")
        kind, names = args.kind, list(args.names)
        if "/" in kind:
            kind, first = kind.split("/", 1)
            names.insert(0, first)
        if not names:
            raise ValueError(f"delete {kind}: name at least one")
        cls = resource_class(kind)
        targets = [(cls, n) for n in names]
    cfg = settings()
    namespace = namespace_of(args)
    store = open_store(cfg)
    failures = 0
    deleted: list[str] = []
    try:
        for cls, name in targets:
            try:
                await store.delete(cls, name, namespace)
            except NotFound as err:
                print(f"error: {err}", file=sys.stderr)
                failures += 1
                continue
            print(f"{cls.KIND.lower()}/{name} deleted")
            if cls is Agent:
                deleted.append(name)
    finally:
        await store.close()
    if args.volumes and deleted:
        runtime = open_runtime(cfg)
        try:
            for name in deleted:
                await runtime.remove(f"{namespace}/{name}", volumes=True)
                print(f"agent/{name} volumes removed")
        finally:
            await runtime.close()
    return 1 if failures else 0


async def cmd_set_state(args: argparse.Namespace) -> int:
    store = open_store(settings())
    namespace = namespace_of(args)
    try:
        for name in args.names:
            await _set_state(store, name, namespace, args.state)
    finally:
        await store.close()
    return 0


async def _set_state(store: Store, name: str, namespace: str, state: DesiredState) -> None:
    for _ in range(5):  # retry on a concurrent write (409)
        agent = await store.get(Agent, name, namespace)
        if agent.spec.state == state:
            print(f"agent/{name} already {state.value}")
            return
        agent.spec.state = state
        try:
            await store.replace(agent)
            print(f"agent/{name} {state.value.lower()}")
            return
        except Exception as err:  # noqa: BLE001
            if getattr(err, "status", None) != 409:
                raise
    raise RuntimeError(f"agent/{name}: kept conflicting with concurrent writes; try again")


async def cmd_restart(args: argparse.Namespace) -> int:
    cfg = settings()
    namespace = namespace_of(args)
    store = open_store(cfg)
    try:
        agents = [await store.get(Agent, name, namespace) for name in args.names]
    finally:
        await store.close()
    runtime = open_runtime(cfg)
    try:
        for agent in agents:
            await runtime.remove(agent.key, volumes=False)
            print(f"agent/{agent.name} restarted (container removed; the controller starts a new one)")
    finally:
        await runtime.close()
    warning = presence.no_controller_warning(cfg.home, cfg.store)
    if warning:
        print(warning.replace("status below may be stale", "nothing will start the agents again"), file=sys.stderr)
    return 0


async def cmd_logs(args: argparse.Namespace) -> int:
    cfg = settings()
    namespace = namespace_of(args)
    store = open_store(cfg)
    try:
        await store.get(Agent, args.name, namespace)  # a clear "not found" before asking the runtime
    finally:
        await store.close()
    runtime = open_runtime(cfg)
    try:
        async for line in runtime.logs(f"{namespace}/{args.name}", tail=args.tail, follow=args.follow):
            stamp = line.timestamp.isoformat() if line.timestamp else ""
            print(f"{stamp} {line.level.upper():<5} {line.message}", flush=True)
    except asyncio.CancelledError:
        pass
    finally:
        await runtime.close()
    return 0
