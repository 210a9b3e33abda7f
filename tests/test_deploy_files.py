"""deploy/compose and deploy/systemd: the files the README's layout table promises, checked.

No compose binary is certain on a CI machine, so the compose file is checked for what makes it work:
it runs `clawpen up` (arguments our own parser accepts) with the Docker socket and a home volume, on
the host network (the gateway reaches agents on the host's 127.0.0.1). The systemd unit is verified
with `systemd-analyze verify` when that exists, and its hardening and ExecStart are checked always.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import yaml

from controller.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_clawpen_up_with_the_docker_socket() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    service = compose["services"]["clawpen"]
    args = build_parser().parse_args(service["command"])
    assert args.command == "up" and args.host == "127.0.0.1"
    assert "/var/run/docker.sock:/var/run/docker.sock" in service["volumes"]
    assert any(v.endswith(":/var/lib/clawpen") for v in service["volumes"])
    assert service["environment"]["CLAWPEN_HOME"] == "/var/lib/clawpen"
    assert service["network_mode"] == "host" and service["read_only"] is True
    assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
    context = (ROOT / "deploy" / "compose" / service["build"]["context"]).resolve()
    assert context == ROOT and (context / service["build"]["dockerfile"]).exists()


def test_systemd_unit_is_hardened_and_valid(tmp_path: Path) -> None:
    unit_path = ROOT / "deploy" / "systemd" / "clawpen.service"
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(unit_path.read_text())
    service = unit["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0].endswith("/.venv/bin/clawpen")
    assert build_parser().parse_args(exec_start[1:]).command == "up"
    for setting, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "User": "clawpen",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[setting] == value, setting
    if shutil.which("systemd-analyze"):
        local = tmp_path / "clawpen.service"
        here = str(ROOT / ".venv/bin/clawpen")
        local.write_text(unit_path.read_text().replace("/opt/clawpen/.venv/bin/clawpen", here))
        verified = subprocess.run(
            ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, check=False
        )
        assert verified.returncode == 0, verified.stderr
