"""`clawpen operator`: the Kubernetes operator (kopf) over Agent custom resources.

The store is always the cluster (CRDs). The runtime is Kubernetes unless CLAWPEN_RUNTIME=docker,
in which case the operator drives a Docker host while the desired state lives in the cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import replace

from controller.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("operator", help="run the Kubernetes operator: reconcile Agent custom resources")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch only this namespace (repeatable)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    p.add_argument(
        "--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8081/healthz"
    )
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--uninstall",
        action="store_true",
        help="remove every Agent's workload and the operator's finalizers, then exit (before "
        "`kubectl delete -k deploy/kubernetes`; PVCs are kept)",
    )
    p.set_defaults(handler=cmd_operator)
    actions = p.add_subparsers(dest="action", metavar="{rbac}")
    rbac = actions.add_parser(
        "rbac",
        help="print the RoleBindings that give the operator and gateway Agent Secrets in these namespaces "
        "(pipe to `kubectl apply -f -`)",
    )
    rbac.add_argument(
        "-n",
        "--namespace",
        dest="rbac_namespaces",
        action="append",
        required=True,
        metavar="NAMESPACE",
        help="a namespace that holds Agents (repeatable)",
    )
    rbac.add_argument(
        "--system-namespace",
        default=os.environ.get("CLAWPEN_SYSTEM_NAMESPACE") or "clawpen-system",
        help="where the operator and gateway run (default: CLAWPEN_SYSTEM_NAMESPACE or clawpen-system)",
    )
    rbac.set_defaults(handler=cmd_operator_rbac)


def cmd_operator_rbac(args: argparse.Namespace) -> int:
    from controller.kube.rbac import render_namespace_rbac

    print(render_namespace_rbac(args.rbac_namespaces, args.system_namespace), end="")
    return 0


def operator_settings(env: dict[str, str] | None = None) -> Settings:
    e = dict(os.environ if env is None else env)
    cfg = Settings.from_env(e)
    runtime = e.get("CLAWPEN_RUNTIME") or "kubernetes"
    if runtime not in ("kubernetes", "docker"):
        raise ValueError(f"CLAWPEN_RUNTIME: unknown runtime {runtime!r} (use kubernetes or docker)")
    return replace(cfg, store="kube", runtime=runtime)


async def cmd_operator(args: argparse.Namespace) -> int:
    from controller import operator
    from controller.resources import Team
    from controller.team_sync import sync_team_statuses
    from controller.teams.model import router_problem
    from controller.wiring import build_reconciler, open_catalog, open_runtime, open_store

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    cfg = operator_settings()
    store, runtime = open_store(cfg), open_runtime(cfg)
    if args.uninstall:
        try:
            released = await operator.uninstall(store, runtime)
        finally:
            await runtime.close()
            await store.close()
        print(f"released {len(released)} agent(s): " + (", ".join(released) or "none"))
        return 0
    providers = open_catalog(cfg).providers

    def router_check(team: Team) -> str | None:
        return router_problem(team, providers, os.environ)

    ctx = operator.OperatorContext(
        reconciler=build_reconciler(cfg, store, runtime),
        runtime=runtime,
        resync_seconds=cfg.resync_seconds,
        sync_teams=lambda report: sync_team_statuses(store, report, router_check),
        watch_workloads=cfg.runtime == "kubernetes",  # Pods and StatefulSets wake not-ready agents
        instance=cfg.instance,
    )
    logging.getLogger("clawpen").info(
        "operator up: runtime=%s instance=%s namespaces=%s",
        cfg.runtime,
        cfg.instance,
        ",".join(args.namespace) or "all",
    )
    try:
        await operator.run(ctx, namespaces=args.namespace or None, liveness=args.liveness)
    finally:
        await runtime.close()
        await store.close()
    return 0
