"""`clawpen get templates` through the real `clawpen` process: the catalog's templates with a POOL
column read from the pool task's report in CLAWPEN_HOME (no Docker needed: the report is written
here as the task writes it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from controller.settings import REPO_ROOT
from controller.warm_pool.status import PoolStatus, save_report, status_path


def _cli(home: Path, templates: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWPEN_HOME": str(home), "CLAWPEN_TEMPLATES_DIR": str(templates)}
    env.pop("CLAWPEN_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "get", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def test_get_templates_shows_each_warm_pool(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(REPO_ROOT / "templates" / "providers.yaml", templates / "providers.yaml")
    data = yaml.safe_load((REPO_ROOT / "templates" / "agents.yaml").read_text())
    data["templates"]["pooled"] = {"name": "Pooled", "warmPool": 2, "config": {"program": "openclaw"}}
    (templates / "agents.yaml").write_text(yaml.safe_dump(data))
    home = tmp_path / "home"

    listed = _cli(home, templates, "templates")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROGRAM", "PROVIDER", "MODEL", "POOL"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(data["templates"])
    assert rows["pooled"].endswith("off (no report from the controller yet: is it running?)")
    assert rows["coding-assistant"].split()[-1] == "-"  # no warmPool: no pool

    save_report(status_path(home), {"pooled": PoolStatus(2, ready=1, starting=1)})  # what the pool task writes
    one = _cli(home, templates, "template/pooled", "--no-headers")
    assert one.returncode == 0, one.stderr
    assert one.stdout.split()[0] == "pooled" and one.stdout.rstrip().endswith("1/2 ready, 1 starting")

    doc = json.loads(_cli(home, templates, "templates", "pooled", "-o", "json").stdout)
    assert doc["id"] == "pooled" and "warm_pool" in doc
    assert doc["warm_pool"] == {"size": 2, "ready": 1, "starting": 1, "enabled": True, "reason": None}
    every = json.loads(_cli(home, templates, "templates", "-o", "json").stdout)
    assert [d["id"] for d in every if "warm_pool" in d] == ["pooled"]
    assert _cli(home, templates, "templates", "-o", "name").stdout.split()[0] == "template/coding-assistant"

    missing = _cli(home, templates, "templates", "nope")
    assert missing.returncode != 0 and "template 'nope' not found" in missing.stderr
