"""Helpers for the file store tests: manifests written by hand, waiting for watch events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from controller.resources import Agent, AgentSpec, ObjectMeta
from controller.store.base import WatchEvent

EVENT_TIMEOUT = 20.0  # generous: only reached when an event never comes


def agent(name: str, **spec: object) -> Agent:
    return Agent(metadata=ObjectMeta(name=name), spec=AgentSpec.model_validate(spec))


def manifest(name: str, model: str = "gpt-4o", extra: str = "") -> str:
    return (
        "apiVersion: clawpen.dev/v1alpha1\n"
        "kind: Agent\n"
        f"metadata:\n  name: {name}\n"
        f"spec:\n  provider: openai\n  model: {model}\n{extra}"
    )


async def next_event(events: AsyncIterator[WatchEvent], timeout: float = EVENT_TIMEOUT) -> WatchEvent:
    return await asyncio.wait_for(anext(events), timeout)


async def event_for(
    events: AsyncIterator[WatchEvent], name: str, timeout: float = EVENT_TIMEOUT
) -> list[WatchEvent]:
    """Events up to and including the first one for `name` (others are returned too, for asserts)."""
    seen: list[WatchEvent] = []
    while True:
        event = await next_event(events, timeout)
        seen.append(event)
        if event.name == name:
            return seen
