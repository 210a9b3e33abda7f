"""`clawpen get`, `describe` and `wait`: reading resources the way kubectl does.

get takes kinds (`agents`, `teams`, `all`) or `kind/name`, label selectors (-l), the output
formats a script needs (-o name|wide|yaml|json|jsonpath=..., --no-headers) and -w to keep printing
changes. Watching reads the store's own change stream (spec files) plus the status directory, so it
works with or without a gateway, and never re-lists on a timer. Every reader warns (on stderr) when
no controller runs for this home: the status it shows may then be stale. `get templates` (the
catalog and its warm pools, not stored resources) is in get_templates.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from controller import presence
from controller.catalog import Catalog
from controller.commands._common import (
    OUTPUT_HELP,
    add_namespace,
    age,
    jsonpath,
    matches,
    namespace_of,
    parse_selector,
    render,
    resource_class,
    settings,
    table,
)
from controller.commands.get_templates import KINDS as TEMPLATE_KINDS
from controller.commands.get_templates import get_templates
from controller.resources import Agent, Resource, Team
from controller.store.base import Store
from controller.translate import effective_provider_model
from controller.wiring import open_catalog, open_store

AGENT_COLUMNS = ["NAME", "PHASE", "READY", "REASON", "PROVIDER", "MODEL", "ENDPOINT", "AGE"]
AGENT_WIDE = ["TEMPLATE", "STATE", "LABELS"]
TEAM_COLUMNS = ["NAME", "PHASE", "AGENTS", "ROUTER", "AGE"]
TEAM_WIDE = ["MISSING", "NOT-RUNNING", "LABELS"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("get", help="list resources or show some", description="list resources or show some")
    p.add_argument("kind", help="agents | teams | templates | all, or TYPE/NAME (e.g. agent/finn)")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these (default: all)")
    p.add_argument("-o", "--output", default="table", help=OUTPUT_HELP)
    p.add_argument("-l", "--selector", help="label selector: k=v, k!=v, k, !k (comma = and)")
    p.add_argument("-w", "--watch", action="store_true", help="after the list, print each change (Ctrl-C ends)")
    p.add_argument("--no-headers", action="store_true", help="table output without the header line")
    add_namespace(p)
    p.set_defaults(handler=cmd_get)

    p = sub.add_parser("describe", help="spec, status, conditions and recent events of a resource")
    p.add_argument("kind", help="agent | team, or TYPE/NAME")
    p.add_argument("name", nargs="?", help="the resource's name")
    add_namespace(p)
    p.set_defaults(handler=cmd_describe)

    p = sub.add_parser("wait", help="wait until a resource meets a condition (like kubectl wait)")
    p.add_argument("target", help="TYPE/NAME, e.g. agent/finn")
    p.add_argument(
        "--for",
        dest="condition",
        default="condition=Ready",
        help="condition=TYPE (status True), phase=PHASE, or delete (default condition=Ready)",
    )
    p.add_argument("--timeout", default="300s", help="give up after this long (e.g. 90s, 5m; default 300s)")
    add_namespace(p)
    p.set_defaults(handler=cmd_wait)


def split_target(kind: str, names: list[str]) -> tuple[str, list[str]]:
    if "/" in kind:
        kind, name = kind.split("/", 1)
        return kind, [name, *names]
    return kind, names


def warn_without_controller() -> None:
    cfg = settings()
    warning = presence.no_controller_warning(cfg.home, cfg.store)
    if warning:
        print(warning, file=sys.stderr)


# ---- rows ---------------------------------------------------------------------------------------


def _labels(obj: Resource) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(obj.metadata.labels.items())) or "-"


def agent_row(agent: Agent, catalog: Catalog | None, wide: bool = False) -> list[str]:
    provider, model = effective_provider_model(agent, catalog) if catalog else (agent.spec.provider, agent.spec.model)
    status = agent.status
    ready = status.condition("Ready") if status else None
    reason = ready.reason if ready and ready.status != "True" and ready.reason else "-"
    row = [
        agent.name,
        str(status.phase) if status else "Pending",
        ready.status if ready else "Unknown",  # one word: awk '$3 == "True"' works
        reason,
        provider or "-",
        model or "-",
        (status.endpoint if status and status.endpoint else "-"),
        age(agent.metadata.creation_timestamp),
    ]
    if wide:
        row += [agent.spec.template or "-", str(agent.spec.state), _labels(agent)]
    return row


def team_row(team: Team, wide: bool = False) -> list[str]:
    status = team.status
    total = len(team.spec.agents)
    members = {entry.agent for entry in team.spec.agents.values()}
    absent = set(status.missing_agents) | set(status.not_running_agents) if status else members
    usable = len(members - absent)
    row = [
        team.name,
        status.phase if status else "Pending",
        f"{usable}/{len(members)}" if total else "0/0",  # members running / members named
        team.spec.router.mode,
        age(team.metadata.creation_timestamp),
    ]
    if wide:
        row += [
            ",".join(status.missing_agents) if status and status.missing_agents else "-",
            ",".join(status.not_running_agents) if status and status.not_running_agents else "-",
            _labels(team),
        ]
    return row


def _catalog_or_none() -> Catalog | None:
    try:
        return open_catalog(settings())
    except Exception:  # noqa: BLE001 - a broken catalog must not hide the listing
        return None


# ---- get ----------------------------------------------------------------------------------------


async def _select(store: Store, cls: type[Resource], names: list[str], namespace: str, selector: Any) -> list[Any]:
    if names:
        return [await store.get(cls, name, namespace) for name in names]
    return [o for o in await store.list(cls, namespace) if matches(o.metadata.labels, selector)]


def _format(cls: type[Resource], objs: list[Any], output: str, catalog: Catalog | None, headers: bool) -> str:
    if output in ("table", "wide"):
        wide = output == "wide"
        if cls is Agent:
            rows = [agent_row(o, catalog, wide) for o in objs]
            return table(rows, AGENT_COLUMNS + (AGENT_WIDE if wide else []), headers=headers)
        rows = [team_row(o, wide) for o in objs]
        return table(rows, TEAM_COLUMNS + (TEAM_WIDE if wide else []), headers=headers)
    if output == "name":
        return "\n".join(f"{cls.KIND.lower()}/{o.name}" for o in objs)
    raise ValueError(f"-o {output!r}: use {OUTPUT_HELP}")


def _check_output(output: str) -> None:
    if output not in ("table", "wide", "name", "yaml", "json") and not output.startswith("jsonpath="):
        raise ValueError(f"-o {output!r}: use {OUTPUT_HELP}")


async def cmd_get(args: argparse.Namespace) -> int:
    _check_output(args.output)
    kind, names = split_target(args.kind, args.names)
    if kind.lower() in TEMPLATE_KINDS:
        return get_templates(args, names)  # the catalog's, not stored resources
    classes: list[type[Resource]] = [Agent, Team] if kind.lower() == "all" else [resource_class(kind)]
    if kind.lower() == "all" and names:
        raise ValueError("`get all` takes no names")
    selector = parse_selector(args.selector)
    namespace = namespace_of(args)
    warn_without_controller()
    catalog = _catalog_or_none()
    store = open_store(settings())
    followers: list[asyncio.Task[None]] = []
    changed: asyncio.Queue[tuple[type[Resource], str]] = asyncio.Queue()
    if args.watch:  # subscribe before listing: a change between the list and the watch is not lost
        followers = [asyncio.create_task(_follow(store, cls, changed)) for cls in classes]
        await asyncio.sleep(0)
    try:
        found: dict[type[Resource], list[Any]] = {}
        for cls in classes:
            found[cls] = await _select(store, cls, names, namespace, selector)
        broken = [] if names or selector else [(cls, b) for cls in classes for b in await store.list_broken(cls)]
        headers = not args.no_headers
        if args.output in ("yaml", "json") or args.output.startswith("jsonpath="):
            docs = [o.dump() for cls in classes for o in found[cls]]
            docs += [{"kind": cls.KIND, "metadata": {"name": b.name}, "error": b.error} for cls, b in broken]
            if args.output.startswith("jsonpath="):
                single = len(docs) == 1 and names
                print(jsonpath(docs[0] if single else {"kind": "List", "items": docs}, args.output[9:]))
            elif len(docs) == 1 and names:
                print(render(docs[0], args.output), end="")
            else:
                print(render(docs, args.output), end="")
        else:
            blocks = []
            for cls in classes:
                if kind.lower() == "all" and not found[cls]:
                    continue
                text = _format(cls, found[cls], args.output, catalog, headers)
                invalid = [b for c, b in broken if c is cls]
                if invalid and args.output in ("table", "wide"):
                    extra = [[b.name, "Invalid", "False", "InvalidSpec"] for b in invalid]
                    width = len(AGENT_COLUMNS if cls is Agent else TEAM_COLUMNS)
                    lines = [table([r + ["-"] * (width - len(r)) for r in extra], ["?"] * width, headers=False)]
                    text = "\n".join(x for x in [text, *lines] if x)
                if text:
                    blocks.append(text)
            if blocks:
                print("\n\n".join(blocks))
            elif args.output in ("table", "wide"):
                print(f"No resources found in {namespace} namespace.", file=sys.stderr)
        for cls, b in broken:
            print(f"error: {cls.KIND.lower()} {b.name}: {b.error}", file=sys.stderr)
        if args.watch:
            await _watch(store, changed, names, namespace, selector, args.output, catalog)
        return 1 if broken and not any(found.values()) else 0
    finally:
        for task in followers:
            task.cancel()
        await store.close()


async def changes(store: Store, cls: type[Resource]) -> AsyncIterator[str]:
    """Names of `cls` objects whose spec or status changed: the store's watch for specs (any
    process, any editor) merged with the file store's status directory, which its spec watch
    leaves out on purpose (status writes must not wake the controller, but a watching user wants them)."""
    queue: asyncio.Queue[str] = asyncio.Queue()

    async def pump(events: AsyncIterator[Any], name_of: Any) -> None:
        async for event in events:
            await queue.put(name_of(event))

    tasks = [asyncio.create_task(pump(store.watch(cls), lambda e: e.name))]
    home = getattr(store, "home", None)
    watcher = None
    if isinstance(home, Path):
        from controller.store.filewatch import DirectoryWatcher

        state_dir = home / ".state" / cls.PLURAL
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        watcher = DirectoryWatcher(state_dir, lambda _p, _r: True, "auto", 0.5)
        tasks.append(asyncio.create_task(pump(watcher.events(watcher.subscribe()), lambda c: c.name)))
    try:
        while True:
            yield await queue.get()
    finally:
        for task in tasks:
            task.cancel()
        if watcher is not None:
            await watcher.close()


async def _follow(store: Store, cls: type[Resource], queue: asyncio.Queue[tuple[type[Resource], str]]) -> None:
    async for name in changes(store, cls):
        await queue.put((cls, name))


async def _watch(
    store: Store,
    queue: asyncio.Queue[tuple[type[Resource], str]],
    names: list[str],
    namespace: str,
    selector: Any,
    output: str,
    catalog: Catalog | None,
) -> None:
    """One line (or document) per change, as `kubectl get -w` prints them."""
    from controller.store.base import NotFound

    last: dict[tuple[type[Resource], str], str] = {}
    while True:
        cls, name = await queue.get()
        if names and name not in names:
            continue
        try:
            obj = await store.get(cls, name, namespace)
        except NotFound:
            line = f"{cls.KIND.lower()}/{name} deleted"
        except Exception as err:  # noqa: BLE001 - a broken file is a line, not the end of the watch
            line = f"{cls.KIND.lower()}/{name} invalid: {err}"
        else:
            if not matches(obj.metadata.labels, selector):
                continue
            if output in ("yaml", "json"):
                line = render(obj.dump(), output).rstrip() + ("\n---" if output == "yaml" else "")
            elif output.startswith("jsonpath="):
                line = jsonpath(obj.dump(), output[9:])
            else:
                line = _format(cls, [obj], output, catalog, headers=False)
        if last.get((cls, name)) != line:  # a rewrite with the same visible state is not news
            last[(cls, name)] = line
            print(line, flush=True)


# ---- describe -----------------------------------------------------------------------------------


async def cmd_describe(args: argparse.Namespace) -> int:
    from controller.events import EventLog

    kind, names = split_target(args.kind, [args.name] if args.name else [])
    if len(names) != 1:
        raise ValueError("describe takes one resource: TYPE NAME or TYPE/NAME")
    cls = resource_class(kind)
    cfg = settings()
    warn_without_controller()
    store = open_store(cfg)
    try:
        obj = await store.get(cls, names[0], namespace_of(args))
    finally:
        await store.close()
    doc = obj.dump()
    status = doc.pop("status", None) or {}
    conditions = status.pop("conditions", [])
    events = [asdict(e) for e in EventLog(cfg.home / "events").recent(obj.key)]
    print_description(
        obj.name, cls.KIND, obj.metadata.labels, obj.metadata.generation, obj.metadata.creation_timestamp,
        doc.get("spec", {}), status, conditions, events,
    )  # fmt: skip
    return 0


def print_description(
    name: str, kind: str, labels: dict[str, str], generation: int | None, created: Any,
    spec: dict[str, Any], status: dict[str, Any], conditions: list[dict[str, Any]], events: list[dict[str, Any]],
) -> None:  # fmt: skip
    """`describe`'s text, from the local store or (clawpen describe through a gateway) the REST answers."""
    print(f"Name:        {name}")
    print(f"Kind:        {kind}")
    print(f"Labels:      {','.join(f'{k}={v}' for k, v in sorted(labels.items())) or '-'}")
    print(f"Generation:  {generation}")
    print(f"Created:     {created}")
    print("Spec:")
    print(_indent(render(spec, "yaml")))
    print("Status:")
    print(_indent(render(status, "yaml")) if status else "  (none yet)")
    print("Conditions:")
    for c in conditions:
        print(f"  {c['type']}={c['status']}  reason={c.get('reason', '')}  since={c.get('lastTransitionTime', '')}")
        if c.get("message"):
            print(f"    {c['message']}")
    print("Events:")
    for e in events:
        print(f"  {e['time']}  {e['type']:<7}  {e['reason']:<12}  {e['message']}")
    if not events:
        print("  (none)")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())


# ---- wait ---------------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def _met(obj: Any, condition: str) -> bool:
    if condition.startswith("condition="):
        want = condition.split("=", 1)[1]
        ctype, _, value = want.partition("=")
        found = obj.status.condition(ctype) if obj.status and hasattr(obj.status, "condition") else None
        if found is None and obj.status is not None:
            found = next((c for c in obj.status.conditions if c.type == ctype), None)
        return found is not None and found.status == (value or "True")
    if condition.startswith("phase="):
        return obj.status is not None and str(obj.status.phase) == condition.split("=", 1)[1]
    raise ValueError(f"--for={condition!r}: use condition=TYPE, phase=PHASE or delete")


async def cmd_wait(args: argparse.Namespace) -> int:
    from controller.store.base import NotFound

    kind, names = split_target(args.target, [])
    if len(names) != 1:
        raise ValueError("wait takes TYPE/NAME, e.g. agent/finn")
    cls, name = resource_class(kind), names[0]
    timeout = parse_duration(args.timeout)
    namespace = namespace_of(args)
    store = open_store(settings())

    async def check() -> bool:
        try:
            obj = await store.get(cls, name, namespace)
        except NotFound:
            if args.condition == "delete":
                return True
            raise
        return args.condition != "delete" and _met(obj, args.condition)

    async def until() -> None:
        stream = changes(store, cls)  # subscribed before the first check: no change is missed
        next_name = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)  # let the stream subscribe before the first look
        try:
            while not await check():
                while await next_name != name:
                    next_name = asyncio.ensure_future(stream.__anext__())
                next_name = asyncio.ensure_future(stream.__anext__())
        finally:
            next_name.cancel()

    try:
        await asyncio.wait_for(until(), timeout)
    except TimeoutError:
        detail = ""
        try:
            obj: Any = await store.get(cls, name, namespace)
            ready = obj.status.conditions[0] if obj.status and obj.status.conditions else None
            phase = obj.status.phase if obj.status else "Pending"
            detail = f" (phase {phase}" + (f", {ready.reason}: {ready.message}" if ready else "") + ")"
        except Exception:  # noqa: BLE001
            pass
        print(f"error: timed out after {args.timeout} waiting for {cls.KIND.lower()}/{name} {args.condition}{detail}",
              file=sys.stderr)
        if presence.no_controller_warning(settings().home, settings().store):
            warn_without_controller()
        return 1
    finally:
        await store.close()
    print(f"{cls.KIND.lower()}/{name} {'deleted' if args.condition == 'delete' else 'condition met'}")
    return 0
