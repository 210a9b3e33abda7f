"""The README's Quickstart, run word for word, so the README cannot drift from the code again.

The ```bash blocks of the "## Quickstart" section are extracted and executed as a new user would:
in a fresh checkout directory (here: a temporary directory whose entries link to this repository's,
so `make` and `.venv/bin/...` resolve exactly as in a clone), with a temporary CLAWPEN_HOME and the
real Docker engine. The first block ends with `make up`, which runs in the foreground: the test runs
that line in the background (with PORT= pointing at a free port, since port 3000 may be taken on a
shared machine) and runs the second block — "in another shell" — once it answers. The only fake is
the model server, reached the way the README says a local one is: as host.docker.internal, via the
OLLAMA_BASE_URL the Quickstart documents.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.model_server import FakeModelServer, Script
from tests.support.clawpen_up import remove_instance

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[1]
REPLY = "Hello from the fake model."


def quickstart_blocks(readme: str) -> list[str]:
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def test_the_quickstart_has_the_two_shells() -> None:
    blocks = quickstart_blocks((ROOT / "README.md").read_text())
    assert len(blocks) == 2, "the walk expects: set-up block ending in `make up`, then the other shell"
    assert blocks[0].strip().splitlines()[-1].startswith("make up")
    assert blocks[0].strip().splitlines()[0].startswith("make deps")  # .venv exists before it is used


def test_every_yaml_example_in_the_readme_is_a_valid_spec() -> None:
    """A ```yaml block is a whole manifest (kind: ...) or a `spec:` fragment of an Agent: both must validate.
    A `templates:` block (templates/agents.yaml) is checked by tests/controller/test_warm_pool.py."""
    import yaml

    from controller.resources import parse_resource

    blocks = re.findall(r"```ya?ml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README's spec examples are ```yaml blocks"
    for block in blocks:
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and set(doc) == {"templates"}:
                continue
            if isinstance(doc, dict) and set(doc) == {"spec"}:
                doc = {"apiVersion": "clawpen.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "example"}, **doc}
            parse_resource(doc)  # raises ManifestError naming the field


def test_every_setting_the_code_reads_is_documented() -> None:
    """Each CLAWPEN_* variable read by the controller, gateway or CLI is in the README's settings
    table (the ones translate() writes for the agent program inside a container are its contract
    with the agent, not settings)."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Settings (environment)", 1)[1].split("\n## ", 1)[0]
    agent_contract = {
        name
        for module in [ROOT / "controller" / "translate.py", ROOT / "controller" / "tools_config.py"]
        + sorted((ROOT / "controller" / "programs").glob("*.py"))
        for name in re.findall(r'"(CLAWPEN_[A-Z_]+)"', module.read_text())
    }
    agent_contract.add("CLAWPEN_VAR_")  # the prefix of variables specs may interpolate (CLAWPEN_VAR_*)
    read: set[str] = set()
    for path in [*(ROOT / "controller").rglob("*.py"), *(ROOT / "api").rglob("*.py")]:
        text = path.read_text()
        read |= set(re.findall(r"""(?:environ|env|e)(?:\.get\(|\[)\s*["'](CLAWPEN_[A-Z_]+)""", text))
        read |= set(re.findall(r"""^[A-Z_]+ = ["'](CLAWPEN_[A-Z_]+)["']""", text, flags=re.M))
    missing = sorted(name for name in read - agent_contract if f"`{name}`" not in table)
    assert not missing, f"settings read by the code but not in the README's settings table: {missing}"
    assert "CLAWPEN_TEAMS_DIR" in read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """A checkout-shaped directory: every top-level entry of the repo, linked."""
    directory = tmp_path / "claw-pen"
    directory.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "finn.yaml"):
            (directory / entry.name).symlink_to(entry)
    return directory


@pytest.fixture()
def fake() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()  # 0.0.0.0: the agent container reaches it as host.docker.internal
    server.default = Script(reply=REPLY)
    yield server
    server.stop()


def run(script: str, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_readme_quickstart_walk(
    clone: Path, tmp_path: Path, fake: FakeModelServer, docker_client: Any, agent_image: str
) -> None:
    setup, other_shell = quickstart_blocks((ROOT / "README.md").read_text())
    *before, make_up = setup.strip().splitlines()
    instance = f"t-walk-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "CLAWPEN_HOME": str(tmp_path / "home"),
        "CLAWPEN_INSTANCE": instance,
        "CLAWPEN_IMAGE": agent_image,
        "OLLAMA_BASE_URL": fake.container_url(),
        "CLAWPEN_RESYNC_SECONDS": "5",
    }
    env.pop("VIRTUAL_ENV", None)
    first = run("\n".join(before), clone, env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "admin password set" in first.stdout

    command = make_up.split("#", 1)[0].strip() + f" PORT={port}"
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            ["bash", "-c", command], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while "clawpen up on http://" not in log.read_text():  # the server's line, not make's announcement
            assert up.poll() is None, "make up ended:\n" + log.read_text()
            assert time.monotonic() < deadline, "make up did not answer:\n" + log.read_text()
            time.sleep(0.2)
        assert f"127.0.0.1:{port}" in log.read_text()  # make up PORT=... is honoured

        second = run(other_shell, clone, env, timeout=600)
        output = second.stdout + second.stderr
        assert second.returncode == 0, output + "\n--- make up:\n" + log.read_text()
        assert "controller:  running" in second.stdout
        assert "agent/finn created (dry run)" in second.stdout and "agent/finn created" in second.stdout
        assert "agent/finn condition met" in second.stdout
        assert re.search(r"^finn\s+Running\s+True\s+-\s+ollama\s+llama3\.2\s+http://", second.stdout, flags=re.M)
        assert REPLY in second.stdout  # the chat reply, from the model through the agent container
        assert "agent/finn deleted" in second.stdout
        assert not (tmp_path / "home" / "agents" / "finn.yaml").exists()
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        remove_instance(docker_client, instance)
    assert "agents keep running" in log.read_text()  # Ctrl-C says what it leaves behind
