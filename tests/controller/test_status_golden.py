"""derive_status() golden files: tests/controller/golden/status/<case>.yaml → <case>.status.yaml.

Each case is a spec, what the runtime observed, and the health probe's answer; the status (phase,
Ready reason and message) is compared with the golden file. Regenerate after an intended change with
`UPDATE_GOLDEN=1 pytest tests/controller/test_status_golden.py` and review the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from controller.resources import API_VERSION, parse_resource
from controller.runtime.base import Observed
from controller.status import derive_status

GOLDEN = Path(__file__).parent / "golden" / "status"
CASES = sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.endswith(".status.yaml"))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def render(case: Path) -> dict:
    doc = yaml.safe_load(case.read_text())
    agent = parse_resource(
        {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "finn", "generation": 1}, "spec": doc["spec"]}
    )
    observed = Observed(key="default/finn", **doc["observed"])
    status = derive_status(
        agent, observed, now=T0, healthy=doc.get("healthy"), health_message=doc.get("health_message")
    )
    ready = status.condition("Ready")
    assert ready is not None
    return {"phase": str(status.phase), "reason": ready.reason, "message": ready.message, "endpoint": status.endpoint}


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    expected_path = case.with_name(case.stem + ".status.yaml")
    actual = render(case)
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(yaml.safe_dump(actual, sort_keys=True))
    assert expected_path.exists(), f"no golden file {expected_path.name}; run with UPDATE_GOLDEN=1 and review it"
    assert actual == yaml.safe_load(expected_path.read_text())
