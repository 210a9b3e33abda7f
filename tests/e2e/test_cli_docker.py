"""The CLI's runtime-facing commands through real processes and the real Docker engine.

`clawpen controller` runs as a subprocess over a temporary home; the CLI is run as a user runs it.
Covered: a required provider key that is missing is `Failed`/`SecretMissing` at once (and shown in
`get`); restart replaces the container; top samples it; a helper container of this installation
(the snapshot helper's labels: instance, no name) is neither reconciled nor touched; `down`
refuses while a controller runs, and after Ctrl-C (which says the agents keep running) removes
the containers and keeps the volumes. Only this run's objects (unique instance label) are touched.
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
from typing import Any

import pytest

from controller.plan import LABEL_INSTANCE, LABEL_MANAGED, MANAGED_BY
from tests.conftest import unique_instance
from tests.fakes.model_server import FakeModelServer, Script
from tests.support.clawpen_up import remove_instance

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]

MANIFEST = """
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {name: finn}
spec: {provider: ollama, resources: {preset: nano}}
---
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {name: keyless}
spec: {provider: openrouter, resources: {preset: nano}}
"""


class Env:
    def __init__(self, home: Path, instance: str, image: str, model: FakeModelServer):
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "CLAWPEN_HOME": str(home),
            "CLAWPEN_INSTANCE": instance,
            "CLAWPEN_IMAGE": image,
            "OLLAMA_BASE_URL": model.container_url(),
            "CLAWPEN_RESYNC_SECONDS": "5",
        }
        self.instance = instance

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=300,
            check=False,
        )


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    server.default = Script(reply="hi")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, agent_image: str, model: FakeModelServer
) -> Iterator[Env]:
    env = Env(tmp_path_factory.mktemp("home"), unique_instance("cli"), agent_image, model)
    yield env
    remove_instance(docker_client, env.instance)


def containers(docker_client: Any, instance: str, name: str | None = None) -> list[Any]:
    found = docker_client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"})
    return [c for c in found if name is None or c.labels.get("clawpen.dev/name") == name]


def test_cli_against_a_running_controller(setup: Env, docker_client: Any, agent_image: str) -> None:
    log = Path(setup.env["CLAWPEN_HOME"]) / "controller.log"
    with log.open("w") as out:
        controller = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "controller"],
            env=setup.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    helper = None
    try:
        assert setup.cli("apply", "-f", "-", stdin=MANIFEST).returncode == 0
        failed = setup.cli("wait", "agent/keyless", "--for=phase=Failed", "--timeout=120s")
        assert failed.returncode == 0, failed.stderr + log.read_text()
        ready = setup.cli("wait", "agent/finn", "--for=condition=Ready", "--timeout=180s")
        assert ready.returncode == 0, ready.stderr + log.read_text()
        rows = {line.split()[0]: line.split() for line in setup.cli("get", "agents").stdout.splitlines()[1:]}
        assert rows["keyless"][1:4] == ["Failed", "False", "SecretMissing"]
        assert rows["finn"][1:4] == ["Running", "True", "-"]
        assert "OPENROUTER_API_KEY" in setup.cli("describe", "agent", "keyless").stdout
        assert "controller:  running" in setup.cli("status").stdout

        # A helper container of this installation (what snapshot restore starts): no name label.
        helper = docker_client.containers.run(
            agent_image,
            [],
            entrypoint=["python3", "-c", "import time; time.sleep(600)"],
            network_mode="none",
            labels={LABEL_MANAGED: MANAGED_BY, LABEL_INSTANCE: setup.instance, "clawpen.dev/role": "snapshot-helper"},
            detach=True,
        )

        [before] = containers(docker_client, setup.instance, "finn")
        restarted = setup.cli("restart", "finn")
        assert restarted.returncode == 0 and "agent/finn restarted" in restarted.stdout
        assert setup.cli("wait", "agent/finn", "--for=condition=Ready", "--timeout=180s").returncode == 0
        deadline = time.monotonic() + 60
        while [c.id for c in containers(docker_client, setup.instance, "finn")] in ([before.id], []):
            assert time.monotonic() < deadline, "restart did not replace the container"
            time.sleep(0.5)
        top = setup.cli("top", "finn").stdout
        assert re.search(r"^finn\s+\d+\.\d%\s+\d+Mi\s+\d+Mi\s+\d+", top, flags=re.M), top

        refused = setup.cli("down")
        assert refused.returncode == 1 and "a controller is running" in refused.stderr
    finally:
        controller.send_signal(signal.SIGINT)
        controller.wait(30)
    text = log.read_text()
    assert "agents keep running" in text
    assert "Traceback" not in text and "NamespaceNotSupported" not in text and "'/'" not in text

    assert "no controller is running" in setup.cli("get", "agents").stderr
    down = setup.cli("down")
    assert down.returncode == 0 and "agent/finn removed" in down.stdout
    assert containers(docker_client, setup.instance, "finn") == []
    assert docker_client.volumes.list(filters={"label": f"{LABEL_INSTANCE}={setup.instance}"})  # volumes kept
    assert helper is not None
    helper.reload()
    assert helper.status == "running"  # not an agent: down leaves it alone
    helper.remove(force=True)
