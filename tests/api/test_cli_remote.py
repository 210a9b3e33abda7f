"""Roles and the CLI: through a gateway the CLI acts with the signed-in user's role; on the machine's
own home it is that machine's admin. Real processes (`python -m controller.cli`), a real gateway over
HTTP, real files; the CLI's own home is an empty directory, so anything it shows or changes went
through the gateway."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread

ROOT = Path(__file__).resolve().parents[2]
VIEWER_PASSWORD = "viewer password 1234"
OPERATOR_PASSWORD = "operator password 123"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("gateway-home")
    server = start_gateway(home)
    admin = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {login(server.url)['access_token']}"}, timeout=10
    )
    for name, role, password in (("vic", "viewer", VIEWER_PASSWORD), ("olga", "operator", OPERATOR_PASSWORD)):
        made = admin.post("/api/users", json={"name": name, "password": password, "role": role})
        assert made.status_code == 201, made.text
    for agent in ("kept", "doomed", "local-only"):
        assert admin.post("/api/agents", json={"name": agent}).status_code == 201
    yield {"server": server, "admin": admin, "home": home}
    admin.close()
    server.stop()


def _clawpen(tmp: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Any:
    full = {
        **{k: v for k, v in os.environ.items() if k not in ("CLAWPEN_SERVER", "CLAWPEN_TOKEN")},
        "CLAWPEN_HOME": str(tmp / "cli-home"),  # empty: the CLI's local store knows no agent
        "CLAWPEN_CREDENTIALS": str(tmp / "credentials.json"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        input=stdin, capture_output=True, text=True, env=full, timeout=60, cwd=ROOT,
    )  # fmt: skip


def test_viewer_logged_in_through_the_gateway_cannot_delete(gateway: dict[str, Any], tmp_path: Path) -> None:
    server: ServerThread = gateway["server"]
    done = _clawpen(tmp_path, "login", "--server", server.url, "-u", "vic", "--password-stdin", stdin=VIEWER_PASSWORD)
    assert done.returncode == 0, done.stderr
    assert f"logged in to {server.url} as vic (viewer; projects: *)" in done.stdout
    saved = tmp_path / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and VIEWER_PASSWORD not in saved.read_text()

    listed = _clawpen(tmp_path, "get", "agents")
    assert listed.returncode == 0, listed.stderr
    assert "doomed" in listed.stdout and "kept" in listed.stdout  # from the gateway, not the empty home

    refused = _clawpen(tmp_path, "delete", "agent", "doomed")
    assert refused.returncode == 1
    assert "403" in refused.stderr and "vic (viewer) lacks permission agents:write" in refused.stderr
    assert gateway["admin"].get("/api/agents/doomed").status_code == 200
    stop = _clawpen(tmp_path, "stop", "kept")
    assert stop.returncode == 1 and "agents:write" in stop.stderr

    # A command with no gateway form is refused, never run on the local home as its admin.
    local = _clawpen(tmp_path, "restart", "kept")
    assert local.returncode == 1 and "works on the local home only" in local.stderr

    out = _clawpen(tmp_path, "logout")
    assert out.returncode == 0 and not saved.exists()
    mine = _clawpen(tmp_path, "get", "agents", "-o", "name")
    assert mine.returncode == 0 and "doomed" not in mine.stdout  # the empty local home again


def test_viewer_api_token_in_the_environment_cannot_delete(gateway: dict[str, Any], tmp_path: Path) -> None:
    server: ServerThread = gateway["server"]
    vic = httpx.post(f"{server.url}/auth/login", json={"username": "vic", "password": VIEWER_PASSWORD}).json()
    made = httpx.post(
        f"{server.url}/api/tokens", json={"name": "ci"}, headers={"Authorization": f"Bearer {vic['access_token']}"}
    )
    env = {"CLAWPEN_SERVER": server.url, "CLAWPEN_TOKEN": made.json()["token"]}
    refused = _clawpen(tmp_path, "delete", "agent", "doomed", env=env)
    assert refused.returncode == 1 and "lacks permission agents:write" in refused.stderr
    assert gateway["admin"].get("/api/agents/doomed").status_code == 200
    shown = _clawpen(tmp_path, "get", "agent", "doomed", "-o", "json", env=env)
    assert shown.returncode == 0 and '"name": "doomed"' in shown.stdout


def test_operator_deletes_through_the_gateway(gateway: dict[str, Any], tmp_path: Path) -> None:
    server: ServerThread = gateway["server"]
    done = _clawpen(
        tmp_path, "login", "--server", server.url, "-u", "olga", "--password-stdin", stdin=OPERATOR_PASSWORD
    )
    assert done.returncode == 0 and "as olga (operator" in done.stdout, done.stderr
    deleted = _clawpen(tmp_path, "delete", "agent", "doomed")
    assert deleted.returncode == 0 and "agent/doomed deleted" in deleted.stdout, deleted.stderr
    audit = gateway["admin"].get("/api/audit", params={"user": "olga"}).json()
    assert any(e["method"] == "DELETE" and e["object"] == "doomed" for e in audit)


def test_the_local_cli_is_the_machine_admin(gateway: dict[str, Any], tmp_path: Path) -> None:
    """No gateway set: the CLI writes the home's store directly, with no role (it can read the
    home's files anyway), like kubectl with the cluster's admin kubeconfig."""
    done = _clawpen(tmp_path, "delete", "agent", "local-only", env={"CLAWPEN_HOME": str(gateway["home"])})
    assert done.returncode == 0, done.stderr
    assert "agent/local-only deleted" in done.stdout


# ---- apply, describe, logs and team classify through the gateway ----------------------------------

AGENT_AND_TEAM = """\
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {name: remote-finn, labels: {team: books}}
spec:
  state: Stopped
  resources: {memoryMB: 256}
  env: {LOG_LEVEL: info}
---
apiVersion: clawpen.dev/v1alpha1
kind: Team
metadata: {name: books}
spec:
  router: {mode: keyword}
  agents:
    receipts: {agent: remote-finn, description: receipts and expense claims}
  routing:
    receipts: {keywords: [receipt]}
"""


def _login(tmp: Path, server: ServerThread, user: str, password: str) -> None:
    done = _clawpen(tmp, "login", "--server", server.url, "-u", user, "--password-stdin", stdin=password)
    assert done.returncode == 0, done.stderr


def _stored(gateway: dict[str, Any], *args: str) -> Any:
    """The gateway's own store, read by the machine's CLI (no gateway in between)."""
    return _clawpen(gateway["home"], *args, env={"CLAWPEN_HOME": str(gateway["home"])})


def test_operator_applies_manifests_through_the_gateway(gateway: dict[str, Any], tmp_path: Path) -> None:
    _login(tmp_path, gateway["server"], "olga", OPERATOR_PASSWORD)
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "books.yaml").write_text(AGENT_AND_TEAM)

    made = _clawpen(tmp_path, "apply", "-f", str(folder))
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == ["agent/remote-finn created", "team/books created"]
    stored = _stored(gateway, "get", "agent", "remote-finn", "-o", "json")
    assert stored.returncode == 0 and '"team": "books"' in stored.stdout and '"memoryMB": 256' in stored.stdout
    assert _stored(gateway, "get", "team", "books", "-o", "name").stdout.strip() == "team/books"

    again = _clawpen(tmp_path, "apply", "-f", str(folder))
    assert again.stdout.splitlines() == ["agent/remote-finn unchanged", "team/books unchanged"], again.stderr

    (folder / "books.yaml").write_text(AGENT_AND_TEAM.replace("memoryMB: 256", "memoryMB: 320"))
    dry = _clawpen(tmp_path, "apply", "-f", str(folder), "--dry-run")
    assert dry.returncode == 0 and "agent/remote-finn configured (dry run)" in dry.stdout, dry.stderr
    assert '"memoryMB": 256' in _stored(gateway, "get", "agent", "remote-finn", "-o", "json").stdout
    changed = _clawpen(tmp_path, "apply", "-f", str(folder))
    assert changed.stdout.splitlines() == ["agent/remote-finn configured", "team/books unchanged"], changed.stderr
    assert '"memoryMB": 320' in _stored(gateway, "get", "agent", "remote-finn", "-o", "json").stdout
    audit = gateway["admin"].get("/api/audit", params={"user": "olga"}).json()
    assert any(e["method"] == "POST" and e["object"] == "remote-finn" for e in audit)

    classified = _clawpen(tmp_path, "team", "classify", "books", "here is the receipt for lunch")
    assert classified.returncode == 0, classified.stderr
    assert "intent:     receipts" in classified.stdout and "agent:      remote-finn" in classified.stdout
    assert "decided by: keyword (team mode keyword)" in classified.stdout

    described = _clawpen(tmp_path, "describe", "agent", "remote-finn")
    assert described.returncode == 0, described.stderr
    assert "Name:        remote-finn" in described.stdout and "Labels:      team=books" in described.stdout
    assert "memory_mb: 320" in described.stdout and "Events:" in described.stdout


def test_viewer_apply_is_refused_and_nothing_is_written(gateway: dict[str, Any], tmp_path: Path) -> None:
    _login(tmp_path, gateway["server"], "vic", VIEWER_PASSWORD)
    manifest = tmp_path / "mine.yaml"
    manifest.write_text(AGENT_AND_TEAM.replace("remote-finn", "vics-agent").replace("books", "vics-team"))
    refused = _clawpen(tmp_path, "apply", "-f", str(manifest))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith("error: agent/vics-agent: POST /api/apply: 403 vic (viewer) lacks permission")
    assert "nothing was applied" in refused.stderr
    assert gateway["admin"].get("/api/agents/vics-agent").status_code == 404
    assert gateway["admin"].get("/api/teams/vics-team").status_code == 404

    # what a viewer may do through the gateway: classify, describe
    shown = _clawpen(tmp_path, "describe", "agent/kept")
    assert shown.returncode == 0 and "Name:        kept" in shown.stdout, shown.stderr


def test_a_bad_manifest_is_one_clear_line(gateway: dict[str, Any], tmp_path: Path) -> None:
    _login(tmp_path, gateway["server"], "olga", OPERATOR_PASSWORD)
    good = "apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: fine-one}\nspec: {state: Stopped}\n"
    # The gateway's catalog judges the names: the second document fails, so the first is not written either.
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(good + "---\n" + good.replace("fine-one", "bad-one").replace("{state", "{template: nope, state"))
    done = _clawpen(tmp_path, "apply", "-f", str(unknown))
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: agent/bad-one: POST /api/apply: 422") and "template" in done.stderr
    assert gateway["admin"].get("/api/agents/fine-one").status_code == 404
    # A schema error is found before anything is sent, naming the file and the field.
    broken = tmp_path / "broken.yaml"
    broken.write_text(good.replace("{state: Stopped}", "{resources: {memoryMB: lots}}"))
    done = _clawpen(tmp_path, "apply", "-f", str(broken))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "memoryMB" in done.stderr, done.stderr
    assert "broken.yaml" in done.stderr
    # Still refused while a gateway is set: commands without a gateway form.
    local = _clawpen(tmp_path, "diff", "-f", str(broken))
    assert local.returncode == 1 and "works on the local home only" in local.stderr
    assert "apply, delete, describe, get, logs, start, stop, team" in local.stderr



def test_readme_roles_and_the_cli_block_runs(gateway: dict[str, Any], tmp_path: Path) -> None:
    """The README's "Roles and the CLI" shell block, line by line as written, against the gateway
    (its URL put in place of 127.0.0.1:3000), with the Quickstart's finn.yaml in the directory."""
    import re

    server: ServerThread = gateway["server"]
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    finn = re.search(r"cat > finn.yaml <<'YAML'\n(.*?)\nYAML\n", quickstart, re.S)
    assert finn is not None
    (tmp_path / "finn.yaml").write_text(finn.group(1) + "\n")
    section = readme.split("**Roles and the CLI.**", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None and "clawpen apply -f finn.yaml" in block.group(1)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CLAWPEN_SERVER", "CLAWPEN_TOKEN")},
        "CLAWPEN_HOME": str(tmp_path / "cli-home"),
        "CLAWPEN_CREDENTIALS": str(tmp_path / "credentials.json"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    seen: dict[str, str] = {}
    labels = None
    for line in block.group(1).splitlines():
        command = line.replace("http://127.0.0.1:3000", server.url)
        done = subprocess.run(
            ["bash", "-c", command], input=OPERATOR_PASSWORD if "login" in line else "", env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, (line, done.stderr)
        seen[line.split("#")[0].strip()] = done.stdout
        if line.startswith("clawpen apply -f finn.yaml  "):
            stored = gateway["admin"].get("/api/agents/finn").json()
            labels = stored["labels"]
            assert stored["config"]["memory_mb"] == 1024
    assert labels == {"team": "finance"}  # the manifest's labels, which the flat REST create cannot carry
    assert seen["clawpen apply -f finn.yaml --dry-run"].strip() == "agent/finn created (dry run)"
    assert seen["clawpen apply -f finn.yaml"].strip() == "agent/finn created"
    assert "Name:        finn" in seen["clawpen describe agent finn"]
    assert gateway["admin"].get("/api/agents/finn").status_code == 404  # deleted through the gateway
    assert not (tmp_path / "credentials.json").exists()  # logged out


@pytest.mark.docker
def test_logs_through_the_gateway(docker_client: Any, agent_image: str, tmp_path: Path) -> None:
    """`clawpen logs NAME --tail N` reads the gateway's /logs route, which reads the real engine: a
    container of the agent image under the agent's container name stands in for what the controller
    would start (no controller runs here), so the lines can only have come from that container."""
    from controller.plan import LABEL_INSTANCE
    from controller.runtime.docker import DockerRuntime
    from controller.runtime.docker_names import container_name
    from tests.conftest import unique_instance
    from tests.support.docker_objects import remove_instance

    instance = unique_instance("cli")
    server = start_gateway(tmp_path / "gw-home", runtime=DockerRuntime(instance), instance=instance)
    try:
        admin = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
        made = httpx.post(f"{server.url}/api/agents", json={"name": "talker", "state": "stopped"}, headers=admin)
        assert made.status_code == 201, made.text
        said = "; ".join(f"print('line {n} from talker', flush=True)" for n in range(1, 6))
        talker = docker_client.containers.run(
            agent_image, entrypoint=["python", "-c", said], name=container_name(instance, "default/talker"),
            labels={LABEL_INSTANCE: instance}, detach=True,
        )  # fmt: skip
        talker.wait(timeout=60)  # it prints and exits; its log stays until the container is removed
        env = {"CLAWPEN_SERVER": server.url, "CLAWPEN_TOKEN": admin["Authorization"].split()[1]}
        shown = _clawpen(tmp_path, "logs", "talker", "--tail", "2", env=env)
        assert shown.returncode == 0, shown.stderr
        assert len(shown.stdout.splitlines()) == 2, shown.stdout
        assert "line 4 from talker" in shown.stdout and "line 5 from talker" in shown.stdout
        assert "line 3 from talker" not in shown.stdout  # --tail 2 reached the engine
        follow = _clawpen(tmp_path, "logs", "talker", "-f", env=env)
        assert follow.returncode == 1 and "works on the local home only" in follow.stderr
    finally:
        server.stop()
        remove_instance(docker_client, instance)
