"""Stable host ports for agents' chat endpoints on Docker.

Docker picks a new ephemeral host port every time a container with an unpinned binding starts, so a
stop/start or a replacement (new plan hash) used to move the agent to another port, breaking every
OpenAI client pointed at it. The runtime instead pins the port: it reuses the one the previous
container had, or the one remembered for the agent in a small registry file (which also survives a
container removed by hand), or picks a free one. The registry forgets an agent when it is removed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import docker.errors

from controller.json_map import read_json_map, save_json_map


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick, as Docker's own allocation does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_taken(err: docker.errors.APIError) -> bool:
    text = str(err.explanation or err).lower()
    return "port is already allocated" in text or "address already in use" in text


def bound_port(attrs: dict[str, Any] | None, container_port: int) -> int | None:
    """The host port a container has (running) or asked for (configured); None when unpinned."""
    if not attrs:
        return None
    name = f"{container_port}/tcp"
    candidates = [
        ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(name),
        ((attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(name),
    ]
    for bindings in candidates:
        for binding in bindings or []:
            value = str(binding.get("HostPort") or "")
            if value.isdigit() and int(value) > 0:
                return int(value)
    return None


class HostPorts:
    """agent key → host port, in memory and (when given a file) on disk."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, int]:
        if self.path is None:
            return {}
        return {k: int(v) for k, v in read_json_map(self.path).items() if isinstance(v, int)}

    def _save(self, ports: dict[str, int]) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):  # losing the memory costs a port change, nothing more
                save_json_map(self.path, ports)

    def wanted(self, key: str, previous: dict[str, Any] | None, container_port: int) -> int:
        """The port the agent's next container should bind: the previous one's, remembered, or free."""
        with self._lock:
            return bound_port(previous, container_port) or self._load().get(key) or free_port()

    def remember(self, key: str, port: int) -> None:
        with self._lock:
            ports = self._load()
            if ports.get(key) != port:
                ports[key] = port
                self._save(ports)

    def forget(self, key: str) -> None:
        with self._lock:
            ports = self._load()
            if ports.pop(key, None) is not None:
                self._save(ports)
