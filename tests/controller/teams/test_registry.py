"""The teams directory: loaded, reloaded on change, bad files reported without hiding the good ones."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from controller.resources import Team, parse_resource
from controller.teams.registry import TeamRegistry
from controller.teams.toml_format import team_documents

ROOT = Path(__file__).resolve().parents[3]


def copy_shipped(tmp_path: Path) -> Path:
    directory = tmp_path / "teams"
    directory.mkdir()
    for path in (ROOT / "teams").glob("*.toml"):
        shutil.copy(path, directory / path.name)
    return directory


def bump(path: Path, text: str) -> None:
    """Write and move mtime forward, so the change is visible even on coarse-mtime filesystems."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


def test_loads_shipped_teams(tmp_path: Path) -> None:
    registry = TeamRegistry(copy_shipped(tmp_path))
    current = registry.current()
    assert set(current.teams) == {"finance-team", "platform-support"} and not current.errors
    assert current.routers["finance-team"].classify("receipt").intent == "receipts"
    assert registry.current() is current  # unchanged files: same snapshot, no re-read


def test_edit_add_and_remove_are_picked_up(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    registry = TeamRegistry(directory)
    registry.current()
    finance = directory / "finance-team.toml"
    bump(finance, finance.read_text().replace('"receipt", "expense",', '"receipt", "expense", "croissant",'))
    assert registry.current().routers["finance-team"].classify("a croissant").intent == "receipts"
    bump(directory / "solo.toml", '[team]\nname = "Solo"\n[agents]\nall = { agent = "one" }\n')
    assert "solo" in registry.current().teams
    (directory / "solo.toml").unlink()
    assert "solo" not in registry.current().teams


def test_bad_file_is_reported_and_others_still_load(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    bump(directory / "broken.toml", "[team\n")
    current = TeamRegistry(directory).current()
    assert set(current.teams) == {"finance-team", "platform-support"}
    [(path, message)] = current.errors.items()
    assert path.endswith("broken.toml") and "invalid TOML" in message


def test_duplicate_names_and_templates(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    shutil.copy(directory / "finance-team.toml", directory / "z-copy.toml")
    bump(directory / "_example-team.toml", "[team]\nname = 'template'\n[routing.intent_name]\nkeywords=[]\n")
    current = TeamRegistry(directory).current()
    assert list(current.errors) == [str(directory / "z-copy.toml")]
    assert "already defined by" in current.errors[str(directory / "z-copy.toml")]
    assert "template" not in current.teams


def test_missing_directory_is_empty(tmp_path: Path) -> None:
    current = TeamRegistry(tmp_path / "nope").current()
    assert current.teams == {} and current.errors == {}


def test_manifest_loader_hook_agrees_with_the_file_reader() -> None:
    for path in (ROOT / "teams").glob("*.toml"):
        [doc] = team_documents(path, path.read_text())
        team = parse_resource(doc)
        assert isinstance(team, Team) and team.name == path.stem
