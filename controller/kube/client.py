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
    if path and not all(Path(p).expanduser().is_file() for p in path.split(os.pathsep) if p):
        raise KubeConfigError(f"kubeconfig {path}: no such file")
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


class RawApi:
    """Plain JSON requests over the configured ApiClient (auth, TLS, host).

    The generated typed APIs turn every object into pydantic models; the runtime builds and reads
    plain dicts (the same shape as the golden files), so it talks JSON directly.
    """

    def __init__(self, api_client: ApiClient):
        self.api_client = api_client

    async def open(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """Send one request and return the raw response (for streams); raises ApiException."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        params = [
            (k, str(v).lower() if isinstance(v, bool) else v)
            for k, v in (query or {}).items()
            if v is not None
        ]
        method_, url, headers_, body_, post = await self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = await self.api_client.call_api(
            method_, url, headers_, body_, post, _request_timeout=timeout
        )
        if not 200 <= response.status <= 299:
            data = await response.read()
            raise ApiException(
                status=response.status, reason=response.reason, body=data.decode(errors="replace")
            )
        return response

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.open(method, path, **kwargs)
        data = await response.read()
        return json.loads(data) if data else None

    async def get(self, path: str, **query: Any) -> Any:
        return await self.request("GET", path, query=query)

    async def create(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("POST", path, body=body)

    async def merge_patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    async def delete(self, path: str, **query: Any) -> Any:
        return await self.request("DELETE", path, query=query)
