"""`claw-pen.toml` through the real CLI: precedence (env > file > default), `config view` naming
each value's source with secrets masked, clear errors for unknown keys, wrong types and unsupported
settings, and a guard that every setting the code reads is configurable from the file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from controller.config_file import BY_ENV, ConfigError, load

REPO = Path(__file__).resolve().parents[2]


def clawpen(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWPEN_", "DOCKER_", "ANDOR_"))}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args], env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def view(home: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    result = clawpen(*extra, "config", "view", "-o", "json", env={"CLAWPEN_HOME": str(home), **(env or {})})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


SEED_FILE = """
deployment-mode = "linux-native"
runtime-socket = "/var/run/docker.sock"
workers = 7
resync-seconds = 12.5
admin-password = "correct horse battery staple"

[andor-bridge]
url = "http://127.0.0.1:3456"
register-on-create = true
"""


def test_file_env_default_precedence_and_masking(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "claw-pen.toml").write_text(SEED_FILE)
    out = view(home, env={"CLAWPEN_WORKERS": "3"})
    assert out["workers"] == {"env": "CLAWPEN_WORKERS", "value": "3", "source": "env"}
    assert out["resync-seconds"]["value"] == "12.5"
    assert out["resync-seconds"]["source"] == f"file {home / 'claw-pen.toml'}"
    assert out["runtime-socket"]["value"] == "unix:///var/run/docker.sock"
    assert out["andor-bridge-url"]["value"] == "http://127.0.0.1:3456"
    assert out["admin-password"]["value"] == "********"
    assert out["snapshot-retention"]["source"] == "default"

    table = clawpen("config", "view", env={"CLAWPEN_HOME": str(home)})
    assert "correct horse" not in table.stdout + table.stderr
    assert re.search(r"^workers\s+7\s+file ", table.stdout, re.M), table.stdout


def test_explicit_config_flag_and_seed_env_alias(tmp_path: Path):
    other = tmp_path / "elsewhere.toml"
    other.write_text('namespace = "team-a"\n')
    out = view(tmp_path / "home", "--config", str(other), env={"ANDOR_BRIDGE__URL": "http://127.0.0.1:9"})
    assert out["namespace"]["value"] == "team-a"
    assert out["andor-bridge-url"]["value"] == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("workerz = 3\n", "unknown key 'workerz'"),
        ('workers = "three"\n', "workers must be an integer"),
        ('[andor-bridge]\nregister-on-create = "yes"\n', "andor-bridge-register-on-create must be true or false"),
        ('store = "sqlite"\n', "store must be one of files, kube"),
        ("workers = [\n", "not valid TOML"),
        ('network-backend = "tailscale"\n', "not supported in this build"),
    ],
)
def test_bad_files_name_key_and_file(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "claw-pen.toml"
    path.write_text(text)
    result = clawpen("--config", str(path), "get", "agents", env={"CLAWPEN_HOME": str(tmp_path / "h")})
    assert result.returncode == 1
    assert needle in result.stderr, result.stderr
    if "tailscale" not in text:
        assert str(path) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_explicit_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load({}, tmp_path / "absent.toml")


def test_the_file_drives_a_deployment(tmp_path: Path):
    """Values from the file reach the settings the controller is built from."""
    from controller.settings import Settings

    home = tmp_path / "home"
    home.mkdir()
    (home / "claw-pen.toml").write_text('instance = "from-file"\nworkers = 2\n')
    environ = {"CLAWPEN_HOME": str(home)}
    load(environ)
    settings = Settings.from_env(environ)
    assert (settings.instance, settings.workers) == ("from-file", 2)


def test_every_setting_the_code_reads_is_listed():
    pattern = re.compile(r"""(?:get\(|environ\[|_ENV = )["'](CLAWPEN_[A-Z_]+)["']""")
    read: set[str] = set()
    for root in ("controller", "api"):
        for path in (REPO / root).rglob("*.py"):
            read.update(pattern.findall(path.read_text()))
    read.discard("CLAWPEN_CONFIG")
    missing = sorted(read - set(BY_ENV))
    assert not missing, f"settings read by the code but unknown to claw-pen.toml: {missing}"


def test_readme_example_file_is_accepted(tmp_path: Path):
    """The README's claw-pen.toml, as written, drives `config view`."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```toml\n(# \$CLAWPEN_HOME/claw-pen.toml\n.*?)```", readme, re.S)
    assert block, "README has no claw-pen.toml example"
    home = tmp_path / "home"
    home.mkdir()
    (home / "claw-pen.toml").write_text(block.group(1))
    out = view(home)
    assert out["runtime-socket"]["value"] == "unix:///var/run/docker.sock"
    assert out["andor-bridge-url"]["value"] == "http://127.0.0.1:3456"
    assert out["deployment-mode"]["source"].startswith("file ")
