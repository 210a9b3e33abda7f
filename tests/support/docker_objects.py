"""Removing exactly one installation's Docker objects, for tests and benchmarks.

Tests and benchmarks share one engine with other runs (and other engineers' runs), so each cleans up
only what carries its own instance label: its containers (with their anonymous volumes), its named
volumes and its networks. One copy, importable without pytest, keeps that set the same everywhere.
"""

from __future__ import annotations

from typing import Any

from controller.plan import LABEL_INSTANCE


def remove_instance(docker_client: Any, instance: str) -> None:
    """Remove the containers, volumes and networks labelled with this installation id (only those)."""
    label = {"label": f"{LABEL_INSTANCE}={instance}"}
    for container in docker_client.containers.list(all=True, filters=label):
        container.remove(force=True, v=True)
    for volume in docker_client.volumes.list(filters=label):
        volume.remove(force=True)
    for network in docker_client.networks.list(filters=label):
        network.remove()
