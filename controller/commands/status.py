"""`clawpen status`, `clawpen down` and `clawpen top`: the installation as a whole.

status answers "is anything running, where, and with how many agents" from the presence records
(controller/presence.py) and the store, so it works with nothing running. down is the compose
user's `docker compose down`: the containers of this installation go, specs and volumes stay, and
the next `clawpen up` brings them back; it refuses while a controller runs (which would at once
start them again) and says so. top is `kubectl top`: one sample of live usage per running agent.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

import httpx

from controller import presence
from controller.cli import CommandError
from controller.commands._common import add_namespace, matches, namespace_of, parse_selector, settings, table
from controller.resources import Agent, Team
from controller.wiring import open_runtime, open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help="is a controller and a gateway up, where, and with how many agents")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "down", help="remove this installation's agent containers (specs and volumes kept; `clawpen up` restores)"
    )
    p.set_defaults(handler=cmd_down)

    p = sub.add_parser("top", help="live CPU, memory, network and pids of running agents")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these agents")
    p.add_argument("-l", "--selector", help="label selector: k=v, k!=v, k, !k")
    p.add_argument("--no-headers", action="store_true", help="without the header line")
    add_namespace(p)
    p.set_defaults(handler=cmd_top)


async def cmd_status(args: argparse.Namespace) -> int:
    cfg = settings()
    print(f"home:        {cfg.home} (store {cfg.store}, runtime {cfg.runtime}, instance {cfg.instance})")
    controller = presence.read(cfg.home, "controller")
    print(
        f"controller:  running (pid {controller.pid} on {controller.hostname}, since {controller.started})"
        if controller
        else "controller:  not running (start it with `clawpen up`; agents' status may be stale)"
    )
    gateway = presence.read(cfg.home, "gateway")
    if gateway and gateway.url:
        try:
            async with httpx.AsyncClient(timeout=3.0, trust_env=False) as client:
                answer = (await client.get(f"{gateway.url}/health")).status_code
            health = "answers /health" if answer == 200 else f"/health answered HTTP {answer}"
        except httpx.HTTPError as err:
            health = f"does not answer ({type(err).__name__})"
        print(f"gateway:     {gateway.url} (pid {gateway.pid}) {health}")
    else:
        print("gateway:     not running")
    store = open_store(cfg)
    try:
        agents = await store.list(Agent, cfg.namespace)
        teams = await store.list(Team, cfg.namespace)
    finally:
        await store.close()
    phases = Counter(str(a.status.phase) if a.status else "Pending" for a in agents)
    detail = ", ".join(f"{n} {p}" for p, n in sorted(phases.items()))
    print(f"agents:      {len(agents)}" + (f" ({detail})" if detail else ""))
    print(f"teams:       {len(teams)}")
    return 0


async def cmd_down(args: argparse.Namespace) -> int:
    cfg = settings()
    running = presence.read(cfg.home, "controller")
    if running is not None:
        raise CommandError(
            f"a controller is running for {cfg.home} (pid {running.pid}) and would start the agents again: "
            "stop it first (Ctrl-C in its terminal), or use `clawpen stop NAME...` to change what should run"
        )
    runtime = open_runtime(cfg)
    try:
        owned = await runtime.list_owned()
        for observed in owned:
            await runtime.remove(observed.key, volumes=False)
            print(f"agent/{observed.key.split('/', 1)[1]} removed")
    finally:
        await runtime.close()
    if owned:
        print(f"{len(owned)} agent container(s) removed; specs and volumes kept (`clawpen up` starts them again)")
    else:
        print("no agent containers of this installation are running")
    return 0


def _mib(value: float) -> str:
    return f"{value:.0f}Mi"


def _bytes(value: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value}B"


async def cmd_top(args: argparse.Namespace) -> int:
    cfg = settings()
    namespace = namespace_of(args)
    selector = parse_selector(args.selector)
    store = open_store(cfg)
    try:
        agents = [await store.get(Agent, n, namespace) for n in args.names] if args.names else [
            a for a in await store.list(Agent, namespace) if matches(a.metadata.labels, selector)
        ]
    finally:
        await store.close()
    runtime = open_runtime(cfg)
    rows = []
    try:
        samples = await asyncio.gather(*(runtime.stats(a.key) for a in agents), return_exceptions=True)
    finally:
        await runtime.close()
    for agent, sample in zip(agents, samples, strict=True):
        if isinstance(sample, BaseException):
            if args.names:
                rows.append([agent.name, "-", "-", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                agent.name,
                f"{sample.cpu_percent:.1f}%",
                _mib(sample.memory_mb),
                _mib(sample.memory_limit_mb),
                str(sample.pids),
                _bytes(sample.network_rx_bytes),
                _bytes(sample.network_tx_bytes),
            ]
        )
    if not rows:
        print("no running agents")
        return 0
    print(table(rows, ["NAME", "CPU", "MEMORY", "LIMIT", "PIDS", "NET-RX", "NET-TX"], headers=not args.no_headers))
    return 0
