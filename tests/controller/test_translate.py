"""translate() golden files: tests/controller/golden/translate/<case>.yaml → <case>.plan.yaml.

Each input manifest is translated with a fixed catalog (the shipped templates/), fixed secrets and
a fixed environment; the plan (or the error) is compared with the golden file. Regenerate after an
intended change with `UPDATE_GOLDEN=1 pytest tests/controller/test_translate.py` and review the diff.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from controller.catalog import load_catalog
from controller.resources import parse_resource
from controller.settings import REPO_ROOT
from controller.translate import TranslateError, translate

GOLDEN = Path(__file__).parent / "golden" / "translate"
CASES = sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.endswith(".plan.yaml"))
CATALOG = load_catalog(REPO_ROOT / "templates")
ENVIRON = {"FAKE_PORT": "18080"}


class Resolved:
    def __init__(self, scope: str, version: str):
        self.scope, self.version = scope, version


SECRETS = {
    "OPENAI_API_KEY": Resolved("global", "v3"),
    "ANTHROPIC_API_KEY": Resolved("global", "v1"),
    "GITHUB_TOKEN": Resolved("agent", "v1")}


def render(case: Path) -> dict:
    agent = parse_resource(yaml.safe_load(case.read_text()))
    try:
        plan = translate(agent, CATALOG, SECRETS, instance="golden", image="clawpen/agent:0.1.0", environ=ENVIRON)
    except TranslateError as err:
        return {"error": {"reason": err.reason, "message": err.message}}
    out = asdict(plan)
    out["hash"] = plan.hash
    return yaml.safe_load(yaml.safe_dump(out))  # tuples → lists, as in the file


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path):
    expected_path = case.with_suffix(".plan.yaml")
    actual = render(case)
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(yaml.safe_dump(actual, sort_keys=True))
    assert expected_path.exists(), f"no golden file {expected_path.name}; run with UPDATE_GOLDEN=1 and review it"
    assert actual == yaml.safe_load(expected_path.read_text())


def test_same_spec_same_hash_and_state_is_not_hashed():
    doc = yaml.safe_load((GOLDEN / "template-override.yaml").read_text())
    running = translate(parse_resource(doc), CATALOG, SECRETS, instance="i", image="img", environ=ENVIRON)
    doc["spec"]["state"] = "Stopped"
    stopped = translate(parse_resource(doc), CATALOG, SECRETS, instance="i", image="img", environ=ENVIRON)
    assert running.hash == stopped.hash and running.running and not stopped.running


def test_memory_and_secret_version_change_the_hash():
    doc = yaml.safe_load((GOLDEN / "template-override.yaml").read_text())
    base = translate(parse_resource(doc), CATALOG, SECRETS, instance="i", image="img", environ=ENVIRON)
    doc["spec"]["resources"]["memoryMB"] = 4096
    more = translate(parse_resource(doc), CATALOG, SECRETS, instance="i", image="img", environ=ENVIRON)
    assert more.hash != base.hash and more.memory_mb == 4096
    rotated = {**SECRETS, "OPENAI_API_KEY": Resolved("global", "v4")}
    doc["spec"]["resources"]["memoryMB"] = 2048
    again = translate(parse_resource(doc), CATALOG, rotated, instance="i", image="img", environ=ENVIRON)
    assert again.hash != base.hash


def test_no_literal_placeholder_ever_reaches_the_plan():
    for case in CASES:
        rendered = yaml.safe_dump(render(case))
        if "error" not in render(case):
            assert "${" not in rendered, case.name
