"""Snapshots against a real Docker engine: real containers from the agent image, real volumes.

Agent containers are made here with the Docker SDK under the runtime's naming (container_name,
volume_names) and labels, as the Docker runtime would; everything carries this run's unique
instance label and is removed at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from controller.archive import ArchiveError
from controller.plan import LABEL_INSTANCE, LABEL_KIND, LABEL_MANAGED, LABEL_NAME, LABEL_NAMESPACE
from controller.resources import Agent, parse_resource
from controller.runtime.docker import container_name, volume_names
from controller.settings import Settings
from controller.snapshot_export import export, receive
from controller.snapshots import (
    SnapshotConflict,
    SnapshotNotFound,
    Snapshots,
)

pytestmark = pytest.mark.docker

INSTANCE = f"t-snap-{secrets.token_hex(3)}"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except docker.errors.DockerException as err:
        pytest.skip(f"no Docker engine: {err}")
    image = Settings.from_env({}).image
    try:
        c.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.skip(f"agent image {image} missing: run `clawpen image build` (make test does)")
    yield c
    for container in c.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={INSTANCE}"}):
        container.remove(force=True)
    for volume in c.volumes.list(filters={"label": f"{LABEL_INSTANCE}={INSTANCE}"}):
        volume.remove(force=True)
    c.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def snaps(client: docker.DockerClient, home: Path) -> Snapshots:
    settings = Settings.from_env({"CLAWPEN_HOME": str(home), "CLAWPEN_INSTANCE": INSTANCE})
    return Snapshots(settings, client)


def agent(name: str) -> Agent:
    parsed = parse_resource(
        {
            "apiVersion": "clawpen.dev/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": name, "labels": {"team": "qa"}},
            "spec": {"model": "m1", "env": {"LOG_LEVEL": "debug"}},
        }
    )
    assert isinstance(parsed, Agent)
    return parsed


def run_agent(client: docker.DockerClient, name: str, image: str) -> Any:
    """What the Docker runtime does for an agent, reduced to what snapshots rely on."""
    key = f"default/{name}"
    labels = {
        LABEL_MANAGED: "clawpen",
        LABEL_INSTANCE: INSTANCE,
        LABEL_KIND: "Agent",
        LABEL_NAMESPACE: "default",
        LABEL_NAME: name,
    }
    volumes = {}
    for target, volume in volume_names(INSTANCE, key).items():
        try:
            client.volumes.get(volume)
        except docker.errors.NotFound:
            client.volumes.create(volume, labels=labels)
        volumes[volume] = {"bind": target, "mode": "rw"}
    return client.containers.run(
        image,
        name=container_name(INSTANCE, key),
        detach=True,
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": ""},
        network_mode="none",
        labels=labels,
        volumes=volumes,
    )


def write(container: Any, path: str, data: bytes) -> None:
    code = (
        "import sys, os; p = sys.argv[1]; os.makedirs(os.path.dirname(p), exist_ok=True); "
        "open(p, 'wb').write(bytes.fromhex(sys.argv[2]))"
    )
    result = container.exec_run(["python3", "-c", code, path, data.hex()])
    assert result.exit_code == 0, result.output


def write_random(container: Any, path: str, size: int) -> None:
    """Incompressible bytes made inside the container (exec arguments are limited to a few MB)."""
    code = "import os, sys; open(sys.argv[1], 'wb').write(os.urandom(int(sys.argv[2])))"
    result = container.exec_run(["python3", "-c", code, path, str(size)])
    assert result.exit_code == 0, result.output


def tree(container: Any) -> dict[str, str]:
    """Every file under /data and /workspace with the sha256 of its content."""
    code = (
        "import os, hashlib, json\n"
        "out = {}\n"
        "for root in ('/data', '/workspace'):\n"
        "    for d, _, files in os.walk(root):\n"
        "        for f in files:\n"
        "            p = os.path.join(d, f); out[p] = hashlib.sha256(open(p, 'rb').read()).hexdigest()\n"
        "print(json.dumps(out))\n"
    )
    result = container.exec_run(["python3", "-c", code])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def finn(client: docker.DockerClient, snaps: Snapshots) -> Any:
    container = run_agent(client, "finn", snaps.settings.image)
    write(container, "/data/sessions/main.json", b'{"messages": ["hello"]}')
    write_random(container, "/data/big.bin", 3 * 1024 * 1024)
    write(container, "/workspace/notes.md", b"# original notes\n")
    return container


def test_snapshot_restore_brings_original_bytes_back(client: docker.DockerClient, snaps: Snapshots, finn: Any) -> None:
    original = tree(finn)
    phases: list[str] = []
    info = snaps.create(agent("finn"), progress=lambda phase, done, total: phases.append(phase))
    assert "snapshot" in phases
    folder = snaps.root / "finn" / info.id
    assert sha((folder / "data.tar").read_bytes()) == info.sha256
    assert (folder / "data.tar").stat().st_size == info.size_bytes > 3 * 1024 * 1024
    finn.reload()
    assert finn.status == "running"  # unpaused after the copy

    write(finn, "/data/sessions/main.json", b'{"messages": ["changed"]}')
    write(finn, "/data/added-later.txt", b"should disappear")
    write(finn, "/workspace/notes.md", b"overwritten")
    assert tree(finn) != original

    snaps.restore("finn", info.id)
    finn.reload()
    assert finn.status == "running"
    assert tree(finn) == original
    owner = finn.exec_run(["python3", "-c", "import os; print(os.stat('/data/sessions/main.json').st_uid)"])
    assert owner.output.strip() == b"10001"


def test_list_newest_first_and_spec_kept(snaps: Snapshots, finn: Any) -> None:
    first = snaps.create(agent("finn"))
    second = snaps.create(agent("finn"))
    listed = snaps.list("finn")
    assert [i.id for i in listed[:2]] == [second.id, first.id]
    assert listed[0].created_at >= listed[1].created_at
    spec = snaps.spec("finn", second.id)
    assert spec.metadata.name == "finn" and spec.spec.model == "m1" and spec.metadata.labels == {"team": "qa"}
    assert set(listed[0].public()) == {"id", "agent_id", "created_at", "size_bytes", "sha256"}


def test_restore_of_a_stopped_agent_keeps_it_stopped(client: docker.DockerClient, snaps: Snapshots) -> None:
    box = run_agent(client, "stopper", snaps.settings.image)
    write(box, "/data/state.txt", b"v1")
    info = snaps.create(agent("stopper"))
    write(box, "/data/state.txt", b"v2")
    box.stop(timeout=2)
    snaps.restore("stopper", info.id)
    box.reload()
    assert box.status == "exited"
    box.start()
    assert tree(box)["/data/state.txt"] == sha(b"v1")


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_snapshot_is_refused_and_agent_untouched(
    client: docker.DockerClient, snaps: Snapshots, finn: Any, damage: str
) -> None:
    info = snaps.create(agent("finn"))
    data = snaps.root / "finn" / info.id / "data.tar"
    blob = bytearray(data.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    else:
        del blob[len(blob) // 3 :]
    data.write_bytes(bytes(blob))
    write(finn, "/data/after.txt", b"kept")
    before = tree(finn)
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        snaps.restore("finn", info.id)
    assert tree(finn) == before
    snaps.delete("finn", info.id)


def test_clone_has_the_same_data(client: docker.DockerClient, snaps: Snapshots, finn: Any) -> None:
    info = snaps.create(agent("finn"))
    original = tree(finn)
    clone = snaps.clone("finn", info.id, "finn-copy")
    assert clone.metadata.name == "finn-copy" and clone.spec.model == "m1"
    copy = run_agent(client, "finn-copy", snaps.settings.image)
    assert tree(copy) == original
    write(copy, "/data/only-in-copy.txt", b"x")
    assert "/data/only-in-copy.txt" not in tree(finn)  # separate volumes


def test_export_delete_import_round_trip(client: docker.DockerClient, snaps: Snapshots) -> None:
    box = run_agent(client, "porter", snaps.settings.image)
    write_random(box, "/data/memory.db", 200_000)
    write(box, "/workspace/src/main.py", b"print('hi')\n")
    original = tree(box)
    out = io.BytesIO()
    export(snaps, agent("porter"), out)
    # Delete the agent: its container, its volumes and its snapshots.
    box.remove(force=True)
    for volume in volume_names(INSTANCE, "default/porter").values():
        client.volumes.get(volume).remove(force=True)
    snaps.delete_all("porter")

    out.seek(0)
    imported, info = receive(snaps, out)
    assert imported.metadata.name == "porter" and imported.spec.env == {"LOG_LEVEL": "debug"}
    assert [i.id for i in snaps.list("porter")] == [info.id]
    snaps.fill_volumes("default/porter", snaps.root / "porter" / info.id / "data.tar")
    # No container yet, only volumes: a snapshot still works (read through a helper container).
    offline = snaps.create(agent("porter"))
    with tarfile.open(snaps.root / "porter" / offline.id / "data.tar") as tar:
        files = {
            "/" + m.name: sha(tar.extractfile(m).read())  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isreg()
        }
    assert files == original
    again = run_agent(client, "porter", snaps.settings.image)
    assert tree(again) == original


def test_corrupt_export_is_refused(client: docker.DockerClient, snaps: Snapshots, finn: Any) -> None:
    out = io.BytesIO()
    export(snaps, agent("finn"), out)
    blob = out.getvalue()
    truncated = io.BytesIO(blob[: len(blob) // 2])
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        receive(snaps, truncated, name="finn-broken")
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x01  # inside data.tar's content (big.bin dominates it)
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        receive(snaps, io.BytesIO(bytes(flipped)), name="finn-broken")
    with pytest.raises(ArchiveError):
        receive(snaps, io.BytesIO(b"not a tar at all" * 100), name="finn-broken")
    assert snaps.list("finn-broken") == []
    assert not [p for p in snaps.root.iterdir() if p.name.startswith(".incoming")]


def test_hostile_export_entries_are_refused(snaps: Snapshots, tmp_path: Path) -> None:
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w") as tar:
        member = tarfile.TarInfo("data/../../etc/cron.d/evil")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    data = inner.getvalue()
    manifest = {
        "format": "clawpen.dev/agent-export/v1",
        "agent": "evil",
        "snapshot": {"id": "x", "agent_id": "evil", "created_at": "2026-01-01T00:00:00+00:00",
                     "size_bytes": len(data), "sha256": sha(data)},
    }
    spec = b"apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: evil}\n"
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w") as tar:
        for name, blob in (("manifest.json", json.dumps(manifest).encode()), ("agent.yaml", spec), ("data.tar", data)):
            member = tarfile.TarInfo(name)
            member.size = len(blob)
            tar.addfile(member, io.BytesIO(blob))
    outer.seek(0)
    with pytest.raises(ArchiveError, match="escapes"):
        receive(snaps, outer)
    assert snaps.list("evil") == []


def test_retention_keeps_the_last_n(client: docker.DockerClient, home: Path) -> None:
    settings = Settings.from_env(
        {"CLAWPEN_HOME": str(home / "ret"), "CLAWPEN_INSTANCE": INSTANCE, "CLAWPEN_SNAPSHOT_RETENTION": "2"}
    )
    snaps = Snapshots(settings, client)
    run_agent(client, "keeper", settings.image)
    made = [snaps.create(agent("keeper")).id for _ in range(3)]
    assert [i.id for i in snaps.list("keeper")] == [made[2], made[1]]


def test_unknown_and_malformed_ids(snaps: Snapshots) -> None:
    with pytest.raises(SnapshotNotFound):
        snaps.get("finn", "20260101T000000000Z-abcdef")
    with pytest.raises(SnapshotNotFound):
        snaps.get("finn", "../../etc")
    with pytest.raises(SnapshotNotFound):
        snaps.delete("finn", "20260101T000000000Z-abcdef")


# ---- the CLI ---------------------------------------------------------------------------------------


def clawpen(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWPEN_HOME": str(home), "CLAWPEN_INSTANCE": INSTANCE}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=300,
    )


def test_cli_snapshot_restore_export_import(client: docker.DockerClient, home: Path) -> None:
    files = pytest.importorskip("controller.store.files", reason="the CLI needs the file store")
    cli_home = home / "cli"
    spec = agent("cli-a")
    spec.spec.model = "m2"
    asyncio.run(files.FileStore(cli_home).create(spec))
    box = run_agent(client, "cli-a", Settings.from_env({}).image)
    write(box, "/data/state.txt", b"before")
    write_random(box, "/workspace/blob.bin", 12 * 1024 * 1024)
    original = tree(box)

    made = clawpen(cli_home, "snapshot", "create", "cli-a")
    assert made.returncode == 0, made.stderr
    sid = made.stdout.split()[1]
    assert "snapshot:" in made.stderr  # progress on stderr, results on stdout
    listed = clawpen(cli_home, "snapshot", "list", "cli-a")
    assert sid in listed.stdout and "SHA256" in listed.stdout

    write(box, "/data/state.txt", b"after")
    restored = clawpen(cli_home, "snapshot", "restore", "cli-a", sid)
    assert restored.returncode == 0, restored.stderr
    assert tree(box) == original

    archive = cli_home / "cli-a.tar"
    exported = clawpen(cli_home, "export", "cli-a", "-o", str(archive))
    assert exported.returncode == 0, exported.stderr
    assert archive.stat().st_mode & 0o777 == 0o600
    imported = clawpen(cli_home, "import", str(archive), "--name", "cli-b")
    assert imported.returncode == 0, imported.stderr
    shown = clawpen(cli_home, "get", "agents", "cli-b", "-o", "yaml")
    assert shown.returncode == 0, shown.stderr
    assert "model: m2" in shown.stdout
    copy = run_agent(client, "cli-b", Settings.from_env({}).image)
    assert tree(copy) == original

    broken = cli_home / "broken.tar"
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0x55
    broken.write_bytes(bytes(blob))
    refused = clawpen(cli_home, "import", str(broken), "--name", "cli-c")
    assert refused.returncode == 1 and "corrupt or truncated" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert clawpen(cli_home, "get", "agents", "cli-c").returncode != 0

    assert clawpen(cli_home, "snapshot", "delete", "cli-a", sid).returncode == 0
    gone = clawpen(cli_home, "snapshot", "restore", "cli-a", sid)
    assert gone.returncode == 1 and "no snapshot" in gone.stderr


def test_other_runtimes_are_refused_clearly(home: Path) -> None:
    settings = Settings.from_env({"CLAWPEN_HOME": str(home / "kube"), "CLAWPEN_RUNTIME": "kubernetes"})
    with pytest.raises(SnapshotConflict, match="VolumeSnapshots"):
        Snapshots(settings).create(agent("finn"))
