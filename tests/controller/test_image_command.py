"""`clawpen image build` (auto): the OpenClaw image is wanted only when an agent in the store runs OpenClaw."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from controller.commands.image import _openclaw_wanted
from controller.resources import parse_resource
from controller.settings import Settings
from controller.wiring import open_store

CLAW = "apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: claw}\nspec: {template: openclaw-agent}\n"
FINN = "apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: finn}\nspec: {program: clawpen}\n"


def test_openclaw_image_is_wanted_only_when_an_openclaw_agent_exists(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", instance="t")
    assert not _openclaw_wanted(settings)  # an empty (or absent) store wants nothing

    async def create(text: str) -> None:
        store = open_store(settings)
        try:
            await store.create(parse_resource(yaml.safe_load(text)))
        finally:
            await store.close()

    asyncio.run(create(FINN))
    assert not _openclaw_wanted(settings)
    asyncio.run(create(CLAW))
    assert _openclaw_wanted(settings)
