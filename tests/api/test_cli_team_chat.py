"""`clawpen chat team/NAME` through real processes: `clawpen gateway` serving a team from the store.

The team is the shipped example, brought in with `clawpen apply -f teams/finance-team.toml` (the
store is the teams' one source of truth); its router has no model key here, so it routes by
keywords. A message about nothing in particular gets the clarifying question (a turn that ends
with done: true, so the CLI returns), a receipt is routed to `remy`, whom nobody created: the
error frame says so and ends the turn too. Deleting the team stops it being served.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def clawpen(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWPEN_HOME": str(home)}
    env.pop("CLAWPEN_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    assert clawpen(home, "admin", "set-password", stdin="team chat from the cli\n").returncode == 0
    applied = clawpen(home, "apply", "-f", str(ROOT / "teams" / "finance-team.toml"))
    assert applied.stdout.strip() == "team/finance-team created", applied.stderr
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "gateway", "--port", "0"],
        env={**env, "CLAWPEN_HOME": str(home)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(r"clawpen gateway on http://", line):
            break
    else:
        pytest.fail("the gateway did not start:\n" + "".join(seen))
    yield home
    proc.send_signal(signal.SIGINT)
    proc.wait(20)


def test_status_shows_the_gateway(home: Path) -> None:
    out = clawpen(home, "status").stdout
    assert re.search(r"gateway:     http://127\.0\.0\.1:\d+ \(pid \d+\) answers /health", out)
    assert "teams:       1" in out


def test_unsure_router_asks_and_the_turn_ends(home: Path) -> None:
    answer = clawpen(home, "chat", "team/finance-team", "-m", "Write me a haiku about autumn")
    assert answer.returncode == 0, answer.stderr
    assert "I'm not sure what you need" in answer.stdout and "receipts" in answer.stdout
    assert "answer with a number or a name: 1=receipts (remy), 2=payables (pax)" in answer.stderr


def test_routed_to_a_missing_agent_says_so(home: Path) -> None:
    answer = clawpen(home, "chat", "team/finance-team", "-m", "Here's the receipt for the team lunch")
    assert answer.returncode == 1
    assert "→ remy (receipts, keyword" in answer.stderr
    assert "error [remy]: agent unavailable: agent 'remy' does not exist" in answer.stderr


def test_a_deleted_team_is_no_longer_served(home: Path) -> None:
    assert clawpen(home, "delete", "team", "finance-team").returncode == 0
    deadline = time.monotonic() + 30  # the gateway's store notices the file is gone (watch or next read)
    while True:
        answer = clawpen(home, "chat", "team/finance-team", "-m", "receipt")
        if answer.returncode == 1 and "not found" in answer.stderr or time.monotonic() > deadline:
            break
    assert "team 'finance-team' not found" in answer.stderr
    assert clawpen(home, "chat", "agent/finance-team", "-m", "x").returncode == 1
