"""`clawpen team classify` with the real model, and the README's example command, run as written."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAWPEN_TEAMS_DIR", str(ROOT / "teams"))


def test_readme_classify_example(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text()
    [line] = [m for m in re.findall(r"^clawpen team classify .*$", readme, re.MULTILINE)]
    assert main(shlex.split(line)[1:]) == 0
    out = capsys.readouterr().out
    assert "intent:     incidents" in out and "agent:      ivy" in out
    assert "decided by: semantic (team mode hybrid)" in out and "margin" in out and "top:" in out


def test_classify_json_and_keyword_hit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["team", "classify", "finance-team", "Here's the receipt for lunch", "-o", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["intent"], body["method"], body["mode"]) == ("receipts", "keyword", "hybrid")
    assert body["reasoning"].startswith("keyword hit") and body["top_intents"][0]["intent"] == "receipts"


def test_unknown_team_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["team", "classify", "no-such-team", "hello"]) == 1
    assert "team 'no-such-team' not found" in capsys.readouterr().err
