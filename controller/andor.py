"""Registration of agents with an AndOR bridge (the seed's chat hub), as part of reconcile.

The bridge is someone else's service: it may be down, slow or restarted. So registration is a side
effect the controller converges like any other — idempotent (what was registered, and with which
payload, is remembered in a small state file, so a controller restart registers nothing twice),
retried with backoff, and reported as the agent's `Registered` condition — and it never blocks or
fails the agent itself: a bridge error changes that one condition, nothing else.

API (the seed's AndOR hub): `POST {url}/agents {agent_id, display_name, triggers, emoji}` and
`DELETE {url}/agents/{agent_id}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from controller.resources import Agent, Condition, Team
from controller.store.fileio import atomic_write

log = logging.getLogger("clawpen.andor")

ANNOTATION_DISPLAY_NAME = "clawpen.dev/display-name"
ANNOTATION_EMOJI = "clawpen.dev/emoji"
ANNOTATION_TRIGGERS = "clawpen.dev/triggers"  # comma-separated, added to the team keywords
CONDITION = "Registered"
MAX_BACKOFF = 60.0


def agent_id(namespace: str, name: str) -> str:
    """One id per agent on the bridge: names are DNS labels, so '.' cannot collide."""
    return name if namespace == "default" else f"{namespace}.{name}"


def registration(agent: Agent, teams: Iterable[Team]) -> dict[str, Any]:
    """The payload for one agent: pure, so what is sent is what a test can predict."""
    meta = agent.metadata
    triggers: list[str] = []
    for team in teams:
        if team.metadata.namespace != meta.namespace:
            continue
        for intent, target in team.spec.agents.items():
            if target.agent == meta.name:
                routing = team.spec.routing.get(intent)
                triggers += routing.keywords if routing else []
    triggers += [t.strip() for t in meta.annotations.get(ANNOTATION_TRIGGERS, "").split(",") if t.strip()]
    payload: dict[str, Any] = {
        "agent_id": agent_id(meta.namespace, meta.name),
        "display_name": meta.annotations.get(ANNOTATION_DISPLAY_NAME) or meta.name,
        "triggers": sorted(dict.fromkeys(t.lower() for t in triggers)),
    }
    if meta.annotations.get(ANNOTATION_EMOJI):
        payload["emoji"] = meta.annotations[ANNOTATION_EMOJI]
    return payload


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class _Backoff:
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    def due_in(self, key: str) -> float:
        count, last = self.failures.get(key, (0, 0.0))
        if not count:
            return 0.0
        return max(0.0, last + min(2.0 ** (count - 1), MAX_BACKOFF) - time.monotonic())

    def failed(self, key: str) -> float:
        count, _ = self.failures.get(key, (0, 0.0))
        self.failures[key] = (count + 1, time.monotonic())
        return min(2.0**count, MAX_BACKOFF)

    def ok(self, key: str) -> None:
        self.failures.pop(key, None)


class AndorBridge:
    """Keeps the bridge's agent list equal to ours. One instance per controller process."""

    def __init__(self, url: str, state_path: Path, *, timeout: float = 3.0):
        self.url = url.rstrip("/")
        self.state_path = state_path
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._backoff = _Backoff()
        self._registered: dict[str, str] = self._load()
        self._errors: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.state_path, json.dumps(self._registered, sort_keys=True).encode(), mode=0o600)

    @property
    def registered(self) -> dict[str, str]:
        return dict(self._registered)

    async def ensure(self, agent: Agent, teams: Iterable[Team], now: datetime) -> tuple[Condition, float | None]:
        """Register (or re-register after a payload change); the condition, and when to retry."""
        payload = registration(agent, teams)
        ident, digest = payload["agent_id"], _digest(payload)
        async with self._lock:
            if self._registered.get(ident) == digest:
                return self._condition(True, "Registered", f"registered with {self.url}", now), None
            wait = self._backoff.due_in(ident)
            if wait > 0:
                return self._condition(False, "BridgeUnavailable", self._last_error(ident), now), wait
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(f"{self.url}/agents", json=payload)
                if response.status_code >= 300 and response.status_code != 409:
                    raise httpx.HTTPStatusError(
                        f"answered {response.status_code}: {response.text[:200]}",
                        request=response.request,
                        response=response,
                    )
            except httpx.HTTPError as err:
                retry = self._backoff.failed(ident)
                self._errors[ident] = f"the AndOR bridge at {self.url} did not register the agent: {_why(err)}"
                log.warning("%s (retry in %.0f s)", self._errors[ident], retry)
                return self._condition(False, "BridgeUnavailable", self._errors[ident], now), retry
            self._backoff.ok(ident)
            self._errors.pop(ident, None)
            self._registered[ident] = digest
            self._save()
            log.info("registered %s with the AndOR bridge", ident)
            return self._condition(True, "Registered", f"registered with {self.url}", now), None

    async def forget(self, namespace: str, name: str) -> float | None:
        """Unregister a deleted agent; None when done (or never registered), else when to retry."""
        ident = agent_id(namespace, name)
        async with self._lock:
            if ident not in self._registered:
                return None
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.delete(f"{self.url}/agents/{ident}")
                if response.status_code >= 300 and response.status_code != 404:
                    raise httpx.HTTPStatusError(
                        f"answered {response.status_code}", request=response.request, response=response
                    )
            except httpx.HTTPError as err:
                retry = self._backoff.failed(ident)
                log.warning("the AndOR bridge did not unregister %s: %s (retry in %.0f s)", ident, _why(err), retry)
                return retry
            self._backoff.ok(ident)
            del self._registered[ident]
            self._save()
            log.info("unregistered %s from the AndOR bridge", ident)
            return None

    def stale_keys(self, wanted: Iterable[str]) -> list[str]:
        """Keys (namespace/name) registered on the bridge that no agent wants any more."""
        keep = set()
        for key in wanted:
            namespace, _, name = key.partition("/")
            keep.add(agent_id(namespace, name))
        out = []
        for ident in self._registered:
            if ident not in keep:
                namespace, _, name = ident.rpartition(".")
                out.append(f"{namespace or 'default'}/{name}")
        return out

    def _last_error(self, ident: str) -> str:
        return self._errors.get(ident, f"the AndOR bridge at {self.url} is unavailable; retrying")

    @staticmethod
    def _condition(ok: bool, reason: str, message: str, now: datetime) -> Condition:
        return Condition(
            type=CONDITION, status="True" if ok else "False", reason=reason, message=message, last_transition_time=now
        )


def _why(err: httpx.HTTPError) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0][:200]


def with_condition(conditions: list[Condition], new: Condition, previous: Condition | None) -> list[Condition]:
    """Replace (or add) the condition, keeping its transition time when its status did not change."""
    if previous is not None and previous.status == new.status:
        new = new.model_copy(update={"last_transition_time": previous.last_transition_time})
    return [c for c in conditions if c.type != new.type] + [new]
