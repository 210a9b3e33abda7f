"""The agents' networks for DockerRuntime: created on first use, isolated, removed after the last agent.

Docker: one bridge network per installation with inter-container traffic off. Podman's compat API
ignores that option, so there each agent gets an `isolate`d network of its own. Docker's default
address pools hold about 30 bridge networks per host, so networks must not outlive their agents;
`_creating` (under `_network_lock`) keeps a concurrent remove from dropping a network a create is
about to use.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import docker.errors

from controller.plan import LABEL_INSTANCE, LABEL_MANAGED, MANAGED_BY, WorkloadPlan
from controller.runtime.docker_base import DockerBase
from controller.runtime.docker_names import container_name, network_name


class DockerNetworks(DockerBase):
    """The network an agent's container joins, made on demand and released with the last agent."""

    @property
    def network_lock(self) -> threading.Lock:
        return self._network_lock

    def ensure_network_locked(self, key: str) -> str:
        return self._ensure_network_locked(key)

    def _networks(self, name: str | None = None) -> list[Any]:
        """Networks named exactly `name` (default: the instance network); Docker's name filter also
        matches substrings."""
        name = name or network_name(self.instance)
        return [n for n in self.client.networks.list(names=[name]) if n.name == name]

    def _network_for(self, key: str) -> str:
        """Docker: one network per installation with inter-container traffic off. Podman's compat API
        ignores `enable_icc`, so there each agent gets a network of its own, created `isolate`d
        (netavark drops traffic between isolated networks): agents still cannot reach each other."""
        return f"{container_name(self.instance, key)}_net" if self.is_podman else network_name(self.instance)

    def _ensure_network_locked(self, key: str) -> str:
        """Create the agent's network on first use (caller holds _network_lock: Docker does not
        enforce unique network names, so two workers must not both create one)."""
        name = self._network_for(key)
        if not self._networks(name):
            options = {"isolate": "true"} if self.is_podman else {"com.docker.network.bridge.enable_icc": "false"}
            self.client.networks.create(
                name,
                driver="bridge",
                options=options,
                labels={LABEL_MANAGED: MANAGED_BY, LABEL_INSTANCE: self.instance},
                check_duplicate=True,
            )
        return name

    def _release_network(self, key: str | None = None) -> bool:
        """Remove networks no container of ours needs any more; True when none of ours is left.

        Docker's default address pools hold about 30 bridge networks per host, so a network per
        installation must not outlive its last agent. Stopped containers count: they reconnect to it
        by name when started again. On Podman, a removed agent's own network goes with it."""
        with self._network_lock:
            if self._creating:
                return False
            if key is not None and self.is_podman:
                for network in self._networks(self._network_for(key)):
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        network.remove()
            if self.client.containers.list(all=True, sparse=True, filters={"label": self._labels_filter()}):
                return False
            for network in self.client.networks.list(filters={"label": self._labels_filter()}):
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
            for network in self._networks():
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
            return True

    def _extra_hosts(self, plan: WorkloadPlan, network: str) -> dict[str, str]:
        """Podman 4.3 writes `host-gateway` into /etc/hosts literally: use the network's gateway there."""
        hosts = dict(plan.extra_hosts)
        if self.is_podman and "host-gateway" in hosts.values():
            configs = (self.client.networks.get(network).attrs.get("IPAM") or {}).get("Config") or []
            gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
            if gateway:
                hosts = {name: gateway if ip == "host-gateway" else ip for name, ip in hosts.items()}
        return hosts

    async def remove_network(self) -> bool:
        """Drop this instance's network if no container of ours is left; True when it is gone."""
        return await self._run(self._release_network)
