"""Build the configured store, runtime, catalog and controller from Settings.

The one place that knows which implementation goes with which setting, so the CLI, `clawpen up`
and the operator assemble the same thing.
"""

from __future__ import annotations

import functools
import os

from controller.agent_token import open_agent_tokens
from controller.andor import AndorBridge
from controller.catalog import Catalog, load_catalog
from controller.events import EventLog
from controller.idle import Activity
from controller.interpolate import VarPolicy
from controller.manager import Controller
from controller.reconcile import Reconciler, SecretSource
from controller.runtime.base import Runtime
from controller.settings import Settings
from controller.store.base import Store
from controller.warm_pool.claims import CLAIMS_FILE


def open_store(settings: Settings) -> Store:
    if settings.store == "files":
        from controller.store.files import FileStore

        return FileStore(settings.ensure_home())
    if settings.store == "kube":
        from controller.store.kube import KubeStore

        return KubeStore.from_settings(settings)  # type: ignore[attr-defined]
    raise ValueError(f"CLAWPEN_STORE: unknown store {settings.store!r} (use files or kube)")


def open_runtime(settings: Settings) -> Runtime:
    if settings.runtime == "docker":
        from controller.runtime.docker import DockerRuntime

        return DockerRuntime(
            settings.instance,
            ports_file=settings.ensure_home() / "ports.json",
            volume_policy=settings.volume_policy(),
            gvisor_runtime=settings.gvisor_runtime,
            claims_file=settings.ensure_home() / CLAIMS_FILE,
        )
    if settings.runtime == "kubernetes":
        from controller.runtime.kubernetes import KubernetesRuntime

        return KubernetesRuntime.from_settings(settings)  # type: ignore[attr-defined]
    raise ValueError(f"CLAWPEN_RUNTIME: unknown runtime {settings.runtime!r} (use docker or kubernetes)")


def open_secrets(settings: Settings) -> SecretSource | None:
    try:
        from controller.secrets import SecretStore
    except ImportError:
        return None
    return SecretStore.from_settings(settings)  # type: ignore[return-value]


def open_catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.templates_dir)


def build_reconciler(settings: Settings, store: Store, runtime: Runtime, catalog: Catalog | None = None) -> Reconciler:
    """The reconcile core as both the local loop and the kopf operator use it."""
    return Reconciler(
        store,
        runtime,
        catalog or open_catalog(settings),
        instance=settings.instance,
        image=settings.image,
        secrets=open_secrets(settings),
        environ=os.environ,
        events=EventLog(settings.ensure_home() / "events"),
        # Outside the cluster (no in-cluster service env) the agents' Service names do not resolve.
        runtime_readiness=settings.runtime == "kubernetes" and "KUBERNETES_SERVICE_HOST" not in os.environ,
        bridge=open_bridge(settings),
        tokens=open_agent_tokens(settings.ensure_home(), runtime),
        variables=VarPolicy(names=settings.interpolation_allow()),
        volumes=settings.volume_policy(),
        isolation=settings.isolation,
        activity=Activity(settings.ensure_home()),
    )


def open_bridge(settings: Settings) -> AndorBridge | None:
    """The AndOR bridge agents register with, when `andor-bridge.url` is set and registration is on."""
    if not settings.andor_bridge_url or not settings.andor_register:
        return None
    return AndorBridge(settings.andor_bridge_url, settings.ensure_home() / ".state" / "andor-bridge.json")


def build_controller(settings: Settings, store: Store, runtime: Runtime, catalog: Catalog | None = None) -> Controller:
    reconciler = build_reconciler(settings, store, runtime, catalog)
    from controller.secrets import secret_change_task
    from controller.team_sync import team_status_task
    from controller.warm_pool.status import status_path
    from controller.warm_pool.task import warm_pool_task

    return Controller(
        store,
        runtime,
        reconciler,
        workers=settings.workers,
        resync_seconds=settings.resync_seconds,
        extra_tasks=[
            team_status_task,
            secret_change_task,
            functools.partial(warm_pool_task, status_file=status_path(settings.ensure_home())),
        ],
    )
