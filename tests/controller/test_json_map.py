"""read_json_map / save_json_map: the rules the claim book and the host-port registry rely on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from controller.json_map import read_json_map, save_json_map
from controller.runtime.docker_ports import HostPorts
from controller.warm_pool.claims import Claim, ClaimBook


@pytest.mark.parametrize("content", [None, "", "{not json", "[1, 2]", '"a string"', "\xff"])
def test_a_missing_corrupt_or_non_object_file_reads_as_empty(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "map.json"
    if content is not None:
        path.write_text(content, encoding="latin-1")
    assert read_json_map(path) == {}


def test_save_then_read_round_trips_with_private_modes(tmp_path: Path) -> None:
    path = tmp_path / "home" / "map.json"
    save_json_map(path, {"b": 2, "a": {"x": [1]}}, indent=1)
    assert read_json_map(path) == {"a": {"x": [1]}, "b": 2}
    assert path.read_text() == json.dumps({"a": {"x": [1]}, "b": 2}, indent=1, sort_keys=True)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_save_writes_a_temp_file_and_renames_it_over_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "map.json"
    save_json_map(path, {"old": 1})
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        renames.append((str(src), str(dst)))
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        save_json_map(path, {"new": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    (src, dst), *_ = renames
    assert Path(src).parent == tmp_path and Path(src).name != path.name and dst == str(path)
    assert read_json_map(path) == {"old": 1}  # the target was never written in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.json"]  # the temp file is gone too


def test_both_users_start_empty_from_a_corrupt_file(tmp_path: Path) -> None:
    claims, ports = tmp_path / "claims.json", tmp_path / "ports.json"
    claims.write_text("{truncated")
    ports.write_text("[]")
    assert ClaimBook(claims).all() == []
    registry = HostPorts(ports)
    registry.remember("default/a", 4100)
    assert registry.wanted("default/a", None, 8080) == 4100
    assert read_json_map(ports) == {"default/a": 4100}
    book = ClaimBook(claims)
    book.put(Claim("default/a", {"/data": "v"}))
    assert ClaimBook(claims).get("default/a") == Claim("default/a", {"/data": "v"})
