"""Shared helpers for CLI commands: settings, store/runtime handles, output formatting."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml

from controller.resources import PLURALS, Resource
from controller.settings import Settings

KIND_ALIASES = {
    "agent": "agents",
    "agents": "agents",
    "ag": "agents",
    "team": "teams",
    "teams": "teams",
}


def settings() -> Settings:
    return Settings.from_env()


def resource_class(kind: str) -> type[Resource]:
    plural = KIND_ALIASES.get(kind.lower())
    if plural is None:
        raise ValueError(f"unknown resource type {kind!r} (use agents or teams)")
    return PLURALS[plural]


def age(created: datetime | None) -> str:
    if created is None:
        return "-"
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def render(objs: list[dict[str, Any]] | dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(objs, indent=2, default=str)
    if isinstance(objs, list):
        return yaml.safe_dump_all(objs, sort_keys=False) if objs else ""
    return yaml.safe_dump(objs, sort_keys=False)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)
