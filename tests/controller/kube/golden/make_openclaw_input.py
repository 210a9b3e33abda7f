"""Regenerate openclaw.input.yaml from translate (run after an intended change to the OpenClaw render):
python -m tests.controller.kube.golden.make_openclaw_input"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import yaml

from controller.resources import parse_resource
from controller.translate import translate
from tests.controller.test_translate import CATALOG, ENVIRON, GOLDEN, SECRETS, TOKEN

HERE = Path(__file__).parent
SKIP = ("extra_hosts", "tmpfs", "user", "pids_limit", "read_only_rootfs")


def main() -> None:
    agent = parse_resource(yaml.safe_load((GOLDEN / "openclaw-openai.yaml").read_text()))
    plan = translate(agent, CATALOG, SECRETS, instance="default", image="x", environ=ENVIRON, agent_token=TOKEN)
    data = {k: v for k, v in asdict(plan).items() if k not in SKIP}
    data["files"], data["secrets"], data["mounts"] = list(data["files"]), list(data["secrets"]), []
    out = {
        "plan": data,
        "secret_values": {"OPENAI_API_KEY": "sk-golden", "clawpen-agent-token": "token-golden"},
        "owner": {"name": "claw", "uid": "5d6c1f7e-2222-4b8a-8f00-000000000009"},
    }
    header = (
        "# translate(tests/controller/golden/translate/openclaw-openai.yaml), instance default: the plan the\n"
        "# Docker runtime gets; the StatefulSet mounts the same openclaw.json from the Secret. Regenerate with\n"
        "# python -m tests.controller.kube.golden.make_openclaw_input\n"
    )
    (HERE / "openclaw.input.yaml").write_text(header + yaml.safe_dump(out, sort_keys=False, width=110))


if __name__ == "__main__":
    main()
