"""The kubectl-like CLI over a real file store: apply, get (effective provider/model), errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAWPEN_HOME", str(tmp_path / "home"))
    return tmp_path


def test_apply_then_get_shows_template_defaults(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = home / "a.yaml"
    manifest.write_text(
        "apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: finn}\nspec: {template: research-assistant}\n"
        "---\napiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: pax}\nspec: {provider: ollama}\n"
    )
    assert main(["apply", "-f", str(manifest)]) == 0
    assert capsys.readouterr().out.splitlines() == ["agent/finn created", "agent/pax created"]
    assert main(["apply", "-f", str(manifest)]) == 0
    assert capsys.readouterr().out.splitlines() == ["agent/finn unchanged", "agent/pax unchanged"]
    assert main(["get", "agents"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["finn"][4:6] == ["anthropic", "claude-sonnet-4-5"]  # from the template
    assert rows["pax"][4:6] == ["ollama", "llama3.2"]  # the provider's default model


def test_bad_manifest_is_one_line_and_nonzero(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = home / "bad.yaml"
    manifest.write_text("apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: Bad_Name}\n")
    assert main(["apply", "-f", str(manifest)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "metadata.name" in err and "\n" not in err
    assert main(["get", "agents", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
