"""Hole 12: hostile or unlucky input gets a clear 4xx/5xx naming the cause, never a bare 500.

JSON nested 1,000 deep (a RecursionError → 500 before) is a 400; a full disk under CLAWPEN_HOME is
507 and a read-only one 503, each saying so (a real tmpfs, filled or remounted read-only); YAML
nested 5,000 deep given to `apply` names the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    server = start_gateway(tmp_path_factory.mktemp("home"))
    yield server, {"Authorization": f"Bearer {login(server.url)['access_token']}"}
    server.stop()


@pytest.mark.parametrize("body", ['{"name": "deep", "config": ' + "[" * 1000 + "]" * 1000 + "}", "[" * 5000])
def test_deeply_nested_json_is_400(plain: tuple[ServerThread, dict[str, str]], body: str) -> None:
    server, headers = plain
    answer = httpx.post(
        f"{server.url}/api/agents", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert "nested" in answer.json()["error"]


def test_brackets_inside_strings_do_not_count(plain: tuple[ServerThread, dict[str, str]]) -> None:
    server, headers = plain
    answer = httpx.post(
        f"{server.url}/api/agents",
        json={"name": "brackets", "config": {"system_prompt": "[" * 500 + '\\"{' * 100}},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text


def test_apply_of_yaml_nested_5000_deep_names_the_file(tmp_path: Path) -> None:
    manifest = tmp_path / "deep.yaml"
    manifest.write_text(
        "apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: deep}\nspec: " + "[" * 5000 + "]" * 5000 + "\n"
    )
    env = {**os.environ, "CLAWPEN_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "apply", "-f", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert str(manifest) in done.stderr and "nested too deeply" in done.stderr, done.stderr
    assert "recursion" not in done.stderr


@pytest.fixture
def tmpfs_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(home)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); needs root")
    yield home
    subprocess.run(["umount", "-l", str(home)], check=False)


def test_full_disk_is_507_and_read_only_home_is_503(tmp_path: Path, tmpfs_home: Path) -> None:
    server = start_gateway(tmpfs_home)
    try:
        headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
        assert httpx.post(f"{server.url}/api/agents", json={"name": "before"}, headers=headers).status_code == 201
        filler = tmpfs_home / "filler"
        with filler.open("wb") as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        full = httpx.post(
            f"{server.url}/api/agents",
            json={"name": "after", "config": {"system_prompt": "x" * 60_000}},
            headers=headers,
        )
        assert full.status_code == 507, full.text
        assert "no space left" in full.json()["error"]
        filler.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs_home)], check=True)
        readonly = httpx.post(f"{server.url}/api/agents", json={"name": "after"}, headers=headers)
        assert readonly.status_code == 503, readonly.text
        assert "read-only" in readonly.json()["error"]
        assert httpx.get(f"{server.url}/api/agents/before", headers=headers).status_code == 200  # nothing corrupted
    finally:
        server.stop()


def test_put_without_resource_version_wins_under_contention(plain: tuple[ServerThread, dict[str, str]]) -> None:
    """Updates without resource_version apply to the current object: stale reads are retried, not 409s."""
    from concurrent.futures import ThreadPoolExecutor

    from controller.resources import Agent, AgentStatus, Phase

    server, headers = plain
    assert httpx.post(f"{server.url}/api/agents", json={"name": "contended"}, headers=headers).status_code == 201
    store = server.app.state.deps.store
    stop = False

    def controller_writes() -> None:  # what a busy controller does meanwhile: status writes bump the version
        while not stop:
            server.call(store.update_status(Agent, "contended", AgentStatus(phase=Phase.STARTING)))
            time.sleep(0.005)

    def put(i: int) -> int:
        body = {"config": {"env_vars": {f"K{i}": "v"}}}
        return httpx.put(f"{server.url}/api/agents/contended", json=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(17) as pool:
        writer = pool.submit(controller_writes)
        codes = list(pool.map(put, range(32)))
        stop = True
        writer.result()
    assert codes == [200] * 32, codes
