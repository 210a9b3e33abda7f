"""`clawpen volumes list|prune`: the named volumes of this installation's agents, deleted ones' included.

`delete` keeps an agent's /data and /workspace unless asked (`--volumes`, `?volumes=true`), so a
user who deleted an agent without them needs a way to find and reclaim that space later. `prune`
removes only volumes whose agent no longer exists in the store: a live agent's data is never touched.
"""

from __future__ import annotations

import argparse

from controller.commands._common import settings
from controller.resources import Agent
from controller.runtime.docker_volumes import VolumeInfo
from controller.wiring import open_runtime, open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("volumes", help="list or prune agent volumes (those of deleted agents too)")
    cmds = p.add_subparsers(dest="volumes_command", required=True, metavar="COMMAND")
    listing = cmds.add_parser("list", help="every agent volume, and whether its agent still exists")
    listing.set_defaults(handler=cmd_list)
    prune = cmds.add_parser("prune", help="remove the volumes of agents that no longer exist")
    prune.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    prune.set_defaults(handler=cmd_prune)


async def _volumes() -> tuple[list[VolumeInfo], set[str], object]:
    cfg = settings()
    store, runtime = open_store(cfg), open_runtime(cfg)
    try:
        lister = getattr(runtime, "list_volumes", None)
        if lister is None:
            raise ValueError(f"the {runtime.name} runtime keeps volumes elsewhere (kubectl get pvc)")
        volumes = await lister()
        agents = {a.key for a in await store.list(Agent)}
    finally:
        await store.close()
    return volumes, agents, runtime


async def cmd_list(args: argparse.Namespace) -> int:
    volumes, agents, runtime = await _volumes()
    await runtime.close()  # type: ignore[attr-defined]
    print(f"{'VOLUME':<64} {'AGENT':<32} STATUS")
    for volume in volumes:
        status = "in use" if volume.key in agents else "orphaned (agent deleted)"
        print(f"{volume.name:<64} {volume.key.split('/', 1)[-1]:<32} {status}")
    return 0


async def cmd_prune(args: argparse.Namespace) -> int:
    volumes, agents, runtime = await _volumes()
    try:
        orphaned = [v.name for v in volumes if v.key not in agents]
        if args.dry_run:
            for name in orphaned:
                print(f"would remove {name}")
            return 0
        removed = await runtime.remove_volumes(orphaned) if orphaned else []  # type: ignore[attr-defined]
    finally:
        await runtime.close()  # type: ignore[attr-defined]
    for name in removed:
        print(f"removed {name}")
    print(f"{len(removed)} volume(s) of deleted agents removed")
    return 0
