"""A copy of the shipped templates (templates/agents.yaml, providers.yaml) with extra templates
added, for tests that need a template the shipped catalog does not have (e.g. one with warmPool)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from controller.settings import REPO_ROOT


def templates_with(dest: Path, **extra: dict[str, Any]) -> Path:
    """dest/{agents,providers}.yaml: the shipped catalog plus `extra` (name → template); returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "templates" / "providers.yaml", dest / "providers.yaml")
    data = yaml.safe_load((REPO_ROOT / "templates" / "agents.yaml").read_text())
    data["templates"].update(extra)
    (dest / "agents.yaml").write_text(yaml.safe_dump(data))
    return dest


POOLED = {"name": "Pooled", "warmPool": 2, "config": {"program": "openclaw"}}  # an OpenClaw template with a pool
