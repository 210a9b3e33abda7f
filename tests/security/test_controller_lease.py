"""Hole 13: a second controller on the same CLAWPEN_HOME must not start silently and fight the first.

The first holds the home's lease (an flock on controller.lock, its pid written inside); a second
`clawpen controller`/`clawpen up` refuses with one line naming that pid, and `--standby` waits and
takes over when the holder stops, however it stops (the kernel drops the lock with the process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unique_instance

pytestmark = pytest.mark.docker


def controller(home: Path, instance: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CLAWPEN_HOME": str(home), "CLAWPEN_INSTANCE": instance}
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "controller", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no {needle!r} in output: {''.join(seen)[-2000:]}")


@pytest.fixture
def first(tmp_path: Path, docker_client: object) -> Iterator[tuple[subprocess.Popen[str], Path, str]]:
    instance = unique_instance("tlease")
    proc = controller(tmp_path / "home", instance)
    wait_line(proc, "controller up")
    yield proc, tmp_path / "home", instance
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_second_controller_refuses_naming_the_holder(first: tuple[subprocess.Popen[str], Path, str]) -> None:
    proc, home, instance = first
    second = controller(home, instance)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 1, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    assert f"pid {proc.pid}" in lines[0] and "--standby" in lines[0], out


def test_standby_takes_over_when_the_holder_is_killed(first: tuple[subprocess.Popen[str], Path, str]) -> None:
    proc, home, instance = first
    standby = controller(home, instance, "--standby")
    try:
        wait_line(standby, f"standby: controller pid {proc.pid}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_line(standby, "took over the controller lease")
        wait_line(standby, "controller up")
        assert (home / "controller.lock").read_text().split()[0] == str(standby.pid)
    finally:
        standby.terminate()
        standby.wait(30)
