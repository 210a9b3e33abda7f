"""`clawpen admin set-password` as a user runs it: a real process, the password on stdin."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from api.auth import AdminPassword


def _clawpen(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWPEN_HOME": str(home)}
    env.pop("CLAWPEN_ADMIN_PASSWORD", None)
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_set_password_from_stdin(tmp_path: Path) -> None:
    done = _clawpen(tmp_path, "admin", "set-password", stdin="a long enough secret\n")
    assert done.returncode == 0, done.stderr
    assert "admin password set" in done.stdout and "a long enough secret" not in done.stdout + done.stderr
    admin = AdminPassword(tmp_path)
    assert stat.S_IMODE(admin.path.stat().st_mode) == 0o600
    assert admin.verify("a long enough secret") and not admin.verify("a long enough secret\n")
    again = _clawpen(tmp_path, "admin", "set-password", stdin="another long secret\n")
    assert again.returncode == 0 and AdminPassword(tmp_path).verify("another long secret")


def test_short_password_is_refused_with_one_line(tmp_path: Path) -> None:
    done = _clawpen(tmp_path, "admin", "set-password", stdin="short\n")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: password must be at least 12 characters; nothing changed"
    assert not AdminPassword(tmp_path).exists()


def test_password_is_not_an_argument(tmp_path: Path) -> None:
    done = _clawpen(tmp_path, "admin", "set-password", "a long enough secret")
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr


def _start(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    import re

    env = {**os.environ, "CLAWPEN_HOME": str(home), "CLAWPEN_ADMIN_PASSWORD": "a long enough secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"clawpen gateway on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return proc, found.group(1)
    raise AssertionError(f"no address line; exit code {proc.wait()}")


def test_gateway_serves_and_exits_0_on_ctrl_c(tmp_path: Path) -> None:
    import signal

    import httpx

    proc, url = _start(tmp_path, "gateway", "--port", "0")
    try:
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert httpx.post(f"{url}/auth/login", json={"password": "a long enough secret"}).status_code == 200
        port = int(url.rsplit(":", 1)[1])
        busy = _clawpen(tmp_path, "gateway", "--port", str(port))
        assert busy.returncode == 1
        assert busy.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}:")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0


def test_bad_port_is_one_line(tmp_path: Path) -> None:
    done = _clawpen(tmp_path, "up", "--port", "70000")
    assert done.returncode == 1 and done.stderr.strip() == "error: --port must be between 0 and 65535 (got 70000)"


def test_users_commands_manage_the_users_file(tmp_path: Path) -> None:
    from controller.users.store import UserStore

    added = _clawpen(
        tmp_path, "users", "add", "olga", "--role", "operator", "--project", "alpha", stdin="olga's long password\n"
    )
    assert added.returncode == 0, added.stderr
    assert "olga's long password" not in added.stdout + added.stderr
    user = UserStore(tmp_path).get("olga")
    assert user is not None and user.role == "operator" and user.projects == ["alpha"] and user.password_hash
    listed = _clawpen(tmp_path, "users", "list")
    assert listed.returncode == 0 and "olga" in listed.stdout and "operator" in listed.stdout
    assert _clawpen(tmp_path, "users", "set-role", "olga", "viewer").returncode == 0
    assert _clawpen(tmp_path, "users", "disable", "olga").returncode == 0
    user = UserStore(tmp_path).get("olga")
    assert user is not None and user.role == "viewer" and not user.enabled
    again = _clawpen(tmp_path, "users", "add", "olga", stdin="olga's long password\n")
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    assert _clawpen(tmp_path, "users", "add", "short", stdin="short\n").returncode == 1
    assert _clawpen(tmp_path, "users", "delete", "olga").returncode == 0
    assert UserStore(tmp_path).get("olga") is None


def test_readme_users_example_runs(tmp_path: Path) -> None:
    """The shell block of the README's "Users, roles" section, line by line, as written."""
    import re

    root = Path(__file__).resolve().parents[2]
    section = root.joinpath("README.md").read_text().split("## Users, roles", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    env = {**os.environ, "CLAWPEN_HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("CLAWPEN_ADMIN_PASSWORD", None)
    for line in block.group(1).splitlines():
        done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (line, done.stderr)
    from controller.users.store import UserStore

    vic = UserStore(tmp_path).get("vic")
    assert vic is not None and vic.role == "operator" and vic.projects == ["payments", "search"] and not vic.enabled
