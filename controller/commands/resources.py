"""kubectl-like commands over the store: apply, get, describe, delete, start, stop, logs.

These only write specs and read status (and read logs from the runtime): the controller makes
them true, exactly as with `kubectl apply` against a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from controller.catalog import Catalog
from controller.commands._common import age, render, resource_class, settings, table
from controller.resources import Agent, DesiredState, Resource
from controller.store.base import InvalidObject, NotFound, Store
from controller.translate import effective_provider_model
from controller.wiring import open_catalog, open_runtime, open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("apply", help="create or update resources from YAML files or a directory")
    p.add_argument("-f", "--filename", required=True, action="append", help="file or directory (repeatable)")
    p.set_defaults(handler=cmd_apply)

    p = sub.add_parser("get", help="list resources or show one")
    p.add_argument("kind", help="agents | teams")
    p.add_argument("name", nargs="?")
    p.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")
    p.set_defaults(handler=cmd_get)

    p = sub.add_parser("describe", help="spec, status, conditions and recent events of a resource")
    p.add_argument("kind")
    p.add_argument("name")
    p.set_defaults(handler=cmd_describe)

    p = sub.add_parser("delete", help="delete a resource (agent volumes are kept unless --volumes)")
    p.add_argument("kind")
    p.add_argument("name")
    p.add_argument("--volumes", action="store_true", help="also remove the agent's /data and /workspace volumes")
    p.set_defaults(handler=cmd_delete)

    for verb, state in (("start", DesiredState.RUNNING), ("stop", DesiredState.STOPPED)):
        p = sub.add_parser(verb, help=f"set an agent's spec.state to {state.value}")
        p.add_argument("name")
        p.set_defaults(handler=cmd_set_state, state=state)

    p = sub.add_parser("logs", help="an agent's container logs")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, default=100)
    p.set_defaults(handler=cmd_logs)


async def apply_resource(store: Store, obj: Resource) -> str:
    cls = type(obj)
    try:
        current = await store.get(cls, obj.name, obj.metadata.namespace)
    except NotFound:
        await store.create(obj)
        return "created"
    except InvalidObject:
        await store.delete(cls, obj.name, obj.metadata.namespace)
        await store.create(obj)
        return "configured"
    same = current.spec == obj.spec and current.metadata.labels == obj.metadata.labels  # type: ignore[attr-defined]
    if same and current.metadata.annotations == obj.metadata.annotations:
        return "unchanged"
    updated = current.model_copy(deep=True)
    updated.spec = obj.spec  # type: ignore[attr-defined]
    updated.metadata.labels = obj.metadata.labels
    updated.metadata.annotations = obj.metadata.annotations
    await store.replace(updated)
    return "configured"


async def cmd_apply(args: argparse.Namespace) -> int:
    from controller.manifests import load_manifests

    objs: list[Resource] = []
    for name in args.filename:
        objs += load_manifests(Path(name))  # validates everything before writing anything
    store = open_store(settings())
    try:
        for obj in objs:
            result = await apply_resource(store, obj)
            print(f"{obj.kind.lower()}/{obj.name} {result}")  # type: ignore[attr-defined]
    finally:
        await store.close()
    return 0


def _agent_row(agent: Agent, catalog: Catalog | None) -> list[str]:
    provider, model = effective_provider_model(agent, catalog) if catalog else (agent.spec.provider, agent.spec.model)
    status = agent.status
    ready = status.condition("Ready") if status else None
    return [
        agent.name,
        str(status.phase) if status else "Pending",
        (ready.status if ready else "Unknown") + (f" ({ready.reason})" if ready and ready.status != "True" else ""),
        provider or "-",
        model or "-",
        (status.endpoint if status and status.endpoint else "-"),
        age(agent.metadata.creation_timestamp),
    ]


def _catalog_or_none() -> Catalog | None:
    try:
        return open_catalog(settings())
    except Exception:  # noqa: BLE001 - a broken catalog must not hide the listing
        return None


async def cmd_get(args: argparse.Namespace) -> int:
    cls = resource_class(args.kind)
    store = open_store(settings())
    try:
        if args.name:
            obj = await store.get(cls, args.name)
            if args.output == "table":
                objs = [obj]
            else:
                print(render(obj.dump(), args.output), end="")
                return 0
        else:
            objs = await store.list(cls)
        broken = await store.list_broken(cls) if not args.name else []
        if args.output != "table":
            docs = [o.dump() for o in objs]
            docs += [{"kind": cls.KIND, "metadata": {"name": b.name}, "error": b.error} for b in broken]
            print(render(docs, args.output), end="")
            return 0
        if cls is Agent:
            catalog = _catalog_or_none()
            rows = [_agent_row(o, catalog) for o in objs]  # type: ignore[arg-type]
            rows += [[b.name, "Invalid", "False (InvalidSpec)", "-", "-", "-", "-"] for b in broken]
            print(table(rows, ["NAME", "PHASE", "READY", "PROVIDER", "MODEL", "ENDPOINT", "AGE"]))
        else:
            rows = [
                [o.name, (o.status.phase if o.status else "Pending"), str(len(o.spec.agents)),  # type: ignore[attr-defined]
                 o.spec.router.mode, age(o.metadata.creation_timestamp)]  # type: ignore[attr-defined]
                for o in objs
            ]
            rows += [[b.name, "Invalid", "-", "-", "-"] for b in broken]
            print(table(rows, ["NAME", "PHASE", "AGENTS", "ROUTER", "AGE"]))
        for b in broken:
            print(f"error: {cls.KIND.lower()} {b.name}: {b.error}", file=sys.stderr)
        return 1 if broken and not objs else 0
    finally:
        await store.close()


async def cmd_describe(args: argparse.Namespace) -> int:
    from controller.events import EventLog

    cls = resource_class(args.kind)
    cfg = settings()
    store = open_store(cfg)
    try:
        obj = await store.get(cls, args.name)
    finally:
        await store.close()
    doc = obj.dump()
    status = doc.pop("status", None) or {}
    conditions = status.pop("conditions", [])
    print(f"Name:        {obj.name}")
    print(f"Kind:        {cls.KIND}")
    print(f"Generation:  {obj.metadata.generation}")
    print(f"Created:     {obj.metadata.creation_timestamp}")
    print("Spec:")
    print(_indent(render(doc.get("spec", {}), "yaml")))
    print("Status:")
    print(_indent(render(status, "yaml")) if status else "  (none yet)")
    print("Conditions:")
    for c in conditions:
        print(f"  {c['type']}={c['status']}  reason={c.get('reason', '')}  since={c.get('lastTransitionTime', '')}")
        if c.get("message"):
            print(f"    {c['message']}")
    print("Events:")
    events = EventLog(cfg.home / "events").recent(obj.key)
    for e in events:
        print(f"  {e.time}  {e.type:<7}  {e.reason:<12}  {e.message}")
    if not events:
        print("  (none)")
    return 0


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())


async def cmd_delete(args: argparse.Namespace) -> int:
    cls = resource_class(args.kind)
    cfg = settings()
    store = open_store(cfg)
    try:
        await store.delete(cls, args.name)
    finally:
        await store.close()
    print(f"{cls.KIND.lower()}/{args.name} deleted")
    if args.volumes and cls is Agent:
        runtime = open_runtime(cfg)
        try:
            await runtime.remove(f"{cfg.namespace}/{args.name}", volumes=True)
        finally:
            await runtime.close()
        print(f"agent/{args.name} volumes removed")
    return 0


async def cmd_set_state(args: argparse.Namespace) -> int:
    store = open_store(settings())
    try:
        for _ in range(5):  # retry on a concurrent write (409)
            agent = await store.get(Agent, args.name)
            if agent.spec.state == args.state:
                print(f"agent/{args.name} already {args.state.value}")
                return 0
            agent.spec.state = args.state
            try:
                await store.replace(agent)
                print(f"agent/{args.name} {args.state.value.lower()}")
                return 0
            except Exception as err:  # noqa: BLE001
                if getattr(err, "status", None) != 409:
                    raise
        raise RuntimeError(f"agent/{args.name}: kept conflicting with concurrent writes; try again")
    finally:
        await store.close()


async def cmd_logs(args: argparse.Namespace) -> int:
    cfg = settings()
    store = open_store(cfg)
    try:
        await store.get(Agent, args.name)  # a clear "not found" before asking the runtime
    finally:
        await store.close()
    runtime = open_runtime(cfg)
    try:
        async for line in runtime.logs(f"{cfg.namespace}/{args.name}", tail=args.tail, follow=args.follow):
            stamp = line.timestamp.isoformat() if line.timestamp else ""
            print(f"{stamp} {line.level.upper():<5} {line.message}", flush=True)
    except asyncio.CancelledError:
        pass
    finally:
        await runtime.close()
    return 0
