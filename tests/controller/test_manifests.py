"""load_manifests: what `clawpen apply -f FILE|DIR` reads, and how its errors point at the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import manifests
from controller.manifests import load_manifests, register_loader
from controller.resources import Agent, ManifestError, Team

AGENT = """\
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {{name: {name}}}
spec: {{model: {model}}}
"""
TEAM = """\
apiVersion: clawpen.dev/v1alpha1
kind: Team
metadata: {name: finance}
spec: {description: money}
"""


def test_multi_document_file_skips_empty_documents(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text("---\n" + AGENT.format(name="finn", model="a") + "---\n---\n" + TEAM)
    loaded = load_manifests(path)
    assert [(type(r), r.name) for r in loaded] == [(Agent, "finn"), (Team, "finance")]


def test_directory_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.yml").write_text(AGENT.format(name="zed", model="a"))
    (tmp_path / "a.yaml").write_text(AGENT.format(name="alpha", model="a"))
    (tmp_path / "c.yaml").write_text(AGENT.format(name="gamma", model="a"))
    (tmp_path / "README.md").write_text("not a manifest")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("this: is not read")
    assert [r.name for r in load_manifests(tmp_path)] == ["alpha", "zed", "gamma"]


def test_invalid_document_error_names_file_document_and_field(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        AGENT.format(name="ok", model="a")
        + "---\n"
        + AGENT.format(name="bad", model="a").replace(
            "spec: {model: a}", "spec: {resources: {memoryMB: 999999}}"
        )
    )
    with pytest.raises(ManifestError) as err:
        load_manifests(path)
    message = str(err.value)
    assert str(path) in message and "document 2" in message and "spec.resources.memoryMB" in message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: Agent\nmetadata: [unclosed\n")
    with pytest.raises(ManifestError, match=r"broken\.yaml: invalid YAML: .*line \d+"):
        load_manifests(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [("- a\n- list\n", "must be a mapping"), ("kind: Pod\n", "kind: must be one of")],
)
def test_wrong_shapes_are_explained(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    with pytest.raises(ManifestError, match=problem) as err:
        load_manifests(path)
    assert str(path) in str(err.value)


def test_duplicate_names_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(AGENT.format(name="finn", model="a"))
    (tmp_path / "two.yaml").write_text(AGENT.format(name="finn", model="b"))
    with pytest.raises(ManifestError, match="also defined in .*one.yaml"):
        load_manifests(tmp_path)


def test_missing_unsupported_and_empty_paths(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_manifests(tmp_path / "nope.yaml")
    (tmp_path / "agent.json").write_text("{}")
    with pytest.raises(ManifestError, match="unsupported file type '.json'"):
        load_manifests(tmp_path / "agent.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match="no manifest files"):
        load_manifests(empty)
    (tmp_path / "latin1.yaml").write_bytes(b"kind: \xe9\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_manifests(tmp_path / "latin1.yaml")


def test_loaders_dispatch_on_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifests, "LOADERS", dict(manifests.LOADERS))

    def one_agent_per_file(path: Path, text: str) -> list[dict[str, object]]:
        name = f"{path.stem}-{text.strip()}"
        return [{"apiVersion": "clawpen.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name}}]

    register_loader(".TXT", one_agent_per_file)
    (tmp_path / "x.txt").write_text("from-a-plugin\n")
    assert [r.name for r in load_manifests(tmp_path / "x.txt")] == ["x-from-a-plugin"]
