"""Where the container engine is, and what that means for addresses and secrets.

The seed's split mode runs the orchestrator on one machine and the engine on another
(`DOCKER_HOST=tcp://vm:2376` with TLS, or `ssh://user@vm`). Two things then change: a published
port lives on the engine's machine, so it is published on (and reached at) that machine's address
instead of 127.0.0.1; and a host path is a path on the engine's machine, so secrets cannot be
bind-mounted from the controller's tmpfs. A unix socket (Docker or Podman) means a local engine.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Engine:
    url: str  # DOCKER_HOST as given ("" = the default local socket)
    remote: bool
    host: str  # the engine machine's address as the controller reaches it (127.0.0.1 when local)
    publish_address: str  # where agent ports are published on the engine's machine
    endpoint_host: str  # where the gateway reaches a published port


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def engine_from_env(environ: Mapping[str, str]) -> Engine:
    """The engine DOCKER_HOST names; CLAWPEN_PUBLISH_ADDRESS / CLAWPEN_ENDPOINT_HOST override."""
    url = environ.get("DOCKER_HOST", "").strip()
    parts = urlsplit(url) if url else None
    remote = bool(parts and parts.scheme in ("tcp", "ssh", "http", "https") and parts.hostname)
    host = _resolve(parts.hostname) if remote and parts and parts.hostname else LOOPBACK
    publish = environ.get("CLAWPEN_PUBLISH_ADDRESS", "").strip() or host
    endpoint = environ.get("CLAWPEN_ENDPOINT_HOST", "").strip() or (host if publish == "0.0.0.0" else publish)
    return Engine(url=url, remote=remote, host=host, publish_address=publish, endpoint_host=endpoint)


def engine_client(environment: Mapping[str, str] | None = None, max_pool_size: int | None = None) -> Any:
    """A docker SDK client for the engine the environment names (DOCKER_HOST, DOCKER_TLS_VERIFY,
    DOCKER_CERT_PATH), like docker.from_env() — except that a TLS engine's own CA is really used.

    requests lets REQUESTS_CA_BUNDLE (set system-wide on many machines) replace a session's CA file,
    so docker.from_env() checks a remote engine's certificate against the public bundle and fails
    ("unable to get local issuer certificate"). With a CA of our own, the session ignores the
    environment's CA settings."""
    import docker

    kwargs = docker.utils.kwargs_from_env(environment=dict(environment) if environment is not None else None)
    if max_pool_size is not None:
        kwargs["max_pool_size"] = max_pool_size
    client = docker.DockerClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, **kwargs)
    if isinstance(client.api.verify, str):
        client.api.trust_env = False
    client.api._version = client.api._retrieve_server_version()  # negotiate, as version="auto" would
    return client
