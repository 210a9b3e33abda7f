"""Connecting to the API server, and turning its failures into one-line messages.

We use `kubernetes.aio`, the asyncio flavour that ships inside the official `kubernetes` package
(since v37): the store's watches and the runtime's log follows are long-lived streams, and under
the synchronous client each would pin a thread of asyncio's small default executor (6 threads on
a 2-core machine). No extra dependency: it comes with `kubernetes`, which we already require.

Configuration order: an explicit kubeconfig path (CLAWPEN_KUBECONFIG, then KUBECONFIG), then the
in-cluster service account, then ~/.kube/config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig

ApiClient = kclient.ApiClient
ApiException = kclient.ApiException

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class KubeConfigError(Exception):
    """No usable way to reach an API server was found."""


async def load_api_client(kubeconfig: str | None = None, env: Mapping[str, str] | None = None) -> ApiClient:
    """An ApiClient for the configured cluster (see the module docstring for the order)."""
    e = os.environ if env is None else env
    path = kubeconfig or e.get("CLAWPEN_KUBECONFIG") or e.get("KUBECONFIG")
    configuration = kclient.Configuration()
    try:
        if path:
            await kconfig.load_kube_config(config_file=path, client_configuration=configuration)
        elif e.get("KUBERNETES_SERVICE_HOST") and IN_CLUSTER_TOKEN.exists():
            kconfig.load_incluster_config(client_configuration=configuration)
        elif Path("~/.kube/config").expanduser().exists():
            await kconfig.load_kube_config(client_configuration=configuration)
        else:
            raise KubeConfigError(
                "no Kubernetes configuration: set CLAWPEN_KUBECONFIG (or KUBECONFIG), or run in a cluster"
            )
    except kconfig.ConfigException as err:
        raise KubeConfigError(f"Kubernetes configuration {path or ''}: {err}".replace("  ", " ")) from None
    return kclient.ApiClient(configuration)


def api_client_for(host: str, token: str | None = None, verify_ssl: bool = True) -> ApiClient:
    """An ApiClient for a known server URL (tests, and callers that manage credentials themselves)."""
    configuration = kclient.Configuration(host=host.rstrip("/"))
    configuration.verify_ssl = verify_ssl
    if token:
        configuration.api_key = {"authorization": f"Bearer {token}"}
    return kclient.ApiClient(configuration)


def error_message(err: ApiException) -> str:
    """The API server's own one-line message (its Status.message), never a dump of the body."""
    body: Any = err.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"]).splitlines()[0][:500]
    return f"HTTP {err.status} {err.reason or ''}".strip()


def merge_patch(old: Any, new: Any) -> Any:
    """An RFC 7386 JSON merge patch turning `old` into `new` (removed keys become null)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch
