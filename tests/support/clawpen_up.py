"""`clawpen up` run the way a user runs it (one subprocess: controller + gateway), for end-to-end tests.

One place owns the start (environment with a unique instance id, `--port 0`, waiting for the
address line), the draining of its output (so the process never blocks on a full pipe, and the
test can show the log when something fails) and the stop (Ctrl-C, then kill), followed by the
removal of exactly the Docker objects this run's instance created: the engine is shared with other
test runs, so nothing else is touched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import unique_instance
from tests.support.docker_objects import remove_instance

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = re.compile(r"clawpen up on (http://127\.0\.0\.1:\d+)")


@dataclass
class Up:
    url: str
    instance: str
    home: Path
    env: dict[str, str]
    proc: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)  # its output so far (stdout and stderr)

    def tail(self, lines: int = 30) -> str:
        return "".join(self.log[-lines:])


@contextmanager
def clawpen_up(
    docker_client: Any,
    image: str,
    home: Path,
    *,
    password: str,
    teams: dict[str, str] | None = None,
    resync_seconds: int = 2,
    env: dict[str, str] | None = None,
) -> Iterator[Up]:
    """Start `clawpen up` on a free port with CLAWPEN_HOME=`home`; stop it and remove its Docker
    objects on exit. `teams` = team files (name -> TOML) for its teams directory; `env` adds or
    overrides variables."""
    instance = unique_instance()
    teams_dir = None
    if teams:
        teams_dir = home.with_name(home.name + "-teams")
        teams_dir.mkdir(exist_ok=True)
        for name, text in teams.items():
            (teams_dir / name).write_text(text)
    full_env = {
        **os.environ,
        "CLAWPEN_HOME": str(home),
        "CLAWPEN_INSTANCE": instance,
        "CLAWPEN_ADMIN_PASSWORD": password,
        "CLAWPEN_RESYNC_SECONDS": str(resync_seconds),
        "CLAWPEN_IMAGE": image,
        **({"CLAWPEN_TEAMS_DIR": str(teams_dir)} if teams_dir else {}),
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "up", "--port", "0"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        stdout = proc.stdout
        assert stdout is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = stdout.readline()
            if not line:
                break
            seen.append(line)
            found = ADDRESS.search(line)
            url = found.group(1) if found else None
        assert url, "clawpen up did not report its address:\n" + "".join(seen)
        threading.Thread(target=lambda: seen.extend(stdout), daemon=True).start()
        yield Up(url=url, instance=instance, home=home, env=full_env, proc=proc, log=seen)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        remove_instance(docker_client, instance)
