"""Reading the engine for DockerRuntime: an agent's state, the lists, logs, usage samples and events.

Everything here only reads. The one twist is the warm pool: a claimed pool container keeps its pool
labels for life, so wherever a container has no agent labels the claim book says which agent it
serves (and the plan hash it was configured for). Streams (logs, events) run their blocking
iterator in a thread that feeds an asyncio queue, and closing the async iterator closes the HTTP
response so the thread ends too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import docker.errors

from controller.plan import LABEL_NAME, LABEL_NAMESPACE
from controller.runtime.base import LogLine, Observed, RuntimeError_, RuntimeEvent, Stats
from controller.runtime.docker_base import DockerBase
from controller.runtime.docker_cgroup import NotRunning
from controller.runtime.docker_names import container_name
from controller.runtime.docker_parse import observed_from_attrs, parse_log_line
from controller.runtime.docker_pool import LABEL_POOL_SHAPE, slot_prefix
from controller.runtime.docker_streams import LogStream, threaded
from controller.runtime.docker_volumes import VolumeInfo, list_agent_volumes

WATCHED_ACTIONS = frozenset({"die", "oom", "destroy", "start", "stop", "pause", "unpause"})


class DockerObserve(DockerBase):
    """What the engine says about this installation's agents (never changes anything)."""

    async def version(self) -> str:
        info = await self._run(self.client.version)
        return str(info.get("Version", "unknown"))

    async def observe(self, key: str) -> Observed:
        return await self._run(self._observe, key)

    def _observe(self, key: str) -> Observed:
        container = self._find(key)
        if container is None:
            return Observed(key=key, exists=False)
        return self._observed(key, container.attrs)

    def observe_now(self, key: str) -> Observed:
        return self._observe(key)

    def _observed(self, key: str, attrs: dict[str, Any]) -> Observed:
        observed = observed_from_attrs(key, attrs, self.engine.endpoint_host)
        if observed.plan_hash is None and LABEL_POOL_SHAPE in ((attrs.get("Config") or {}).get("Labels") or {}):
            claim = self.claims.get(key)  # a claimed pool container: its plan hash is in the claim book
            if claim is not None and claim.container == attrs.get("Id"):
                observed = dataclasses.replace(observed, plan_hash=claim.plan_hash)
        return observed

    async def list_owned(self) -> list[Observed]:
        return await self._run(self._list_owned)

    def _list_owned(self) -> list[Observed]:
        found = []
        for container in self.client.containers.list(all=True, filters={"label": self._labels_filter()}):
            labels = container.labels or {}
            if not labels.get(LABEL_NAMESPACE) or not labels.get(LABEL_NAME):
                claim = self.claims.by_container(container.id) if LABEL_POOL_SHAPE in labels else None
                if claim is not None:  # a claimed pool container serves this agent
                    found.append(self._observed(claim.key, container.attrs))
                continue  # a helper (snapshot copy, image build) or an unclaimed pool container
            key = f"{labels[LABEL_NAMESPACE]}/{labels[LABEL_NAME]}"
            found.append(observed_from_attrs(key, container.attrs, self.engine.endpoint_host))
        return found

    async def list_volumes(self) -> list[VolumeInfo]:
        """Every named volume of this installation's agents (deleted agents' included)."""
        return await self._run(self._list_volumes)

    def _list_volumes(self) -> list[VolumeInfo]:
        owners = {volume: claim.key for claim in self.claims.all() for volume in claim.volumes.values()}
        out = []
        for info in list_agent_volumes(self.client, self.instance):
            if info.name in owners:  # a claimed pool volume: its agent's now
                out.append(dataclasses.replace(info, key=owners[info.name]))
            elif not info.name.startswith(slot_prefix(self.instance)):  # unclaimed slots are the pool's
                out.append(info)
        return out

    # -- streams ----------------------------------------------------------------------------------------

    async def logs(self, key: str, *, tail: int | None = 100, follow: bool = False) -> AsyncIterator[LogLine]:
        def _open() -> LogStream:
            container = self._require(key)
            return LogStream.open(self.client.api, container.id, tail=tail, follow=follow)

        stream = await self._run(_open)
        async for stream_name, raw in threaded(stream.lines, stream.interrupt, self._guard_error):
            yield parse_log_line(raw, stream_name)

    async def stats(self, key: str) -> Stats:
        """One usage sample, taken on the sampler's own bounded pool (never the shared one)."""

        def _sample() -> dict[str, Any]:
            name = container_name(self.instance, key)
            try:
                local = self.usage_from_cgroups.sample(name, self.client.api.inspect_container)
            except docker.errors.NotFound:
                raise RuntimeError_(f"no container for agent {key}", reason="NotFound") from None
            except NotRunning:
                raise RuntimeError_(f"agent {key} is not running", reason="NotRunning") from None
            if local is not None:
                return local
            try:
                sample: dict[str, Any] = self.client.api.stats(name, stream=False, one_shot=True)
            except docker.errors.NotFound:
                raise RuntimeError_(f"no container for agent {key}", reason="NotFound") from None
            if str(sample.get("read", "")).startswith("0001-") or not sample.get("memory_stats"):
                raise RuntimeError_(f"agent {key} is not running", reason="NotRunning")
            return sample

        return await self._stats.sample(key, lambda: self._guard(_sample))

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        stream = await self._run(
            self.client.events, decode=True, filters={"type": "container", "label": self._labels_filter()}
        )
        async for event in threaded(lambda: iter(stream), stream.close, self._guard_error):
            action = str(event.get("Action") or event.get("status") or "").split(":")[0]
            if action not in WATCHED_ACTIONS:
                continue
            actor = event.get("Actor") or {}
            attributes = actor.get("Attributes") or {}
            if not attributes.get(LABEL_NAMESPACE) or not attributes.get(LABEL_NAME):
                claim = self.claims.by_container(str(actor.get("ID") or event.get("id") or ""))
                if claim is not None:  # a claimed pool container: the agent it serves
                    yield RuntimeEvent(key=claim.key, action=action)
                continue  # a helper container (snapshot copy) or a pool slot: nothing to reconcile
            key = f"{attributes.get(LABEL_NAMESPACE, '')}/{attributes.get(LABEL_NAME, '')}"
            yield RuntimeEvent(key=key, action=action)
