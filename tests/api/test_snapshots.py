"""Snapshots, restore, clone, export and import over real HTTP against a real Docker engine.

The controller is not running here, so agent containers are made the way the Docker runtime makes
them (its container/volume naming and owner labels, this gateway's unique instance id); the test
removes everything it made.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from controller.plan import LABEL_INSTANCE, LABEL_KIND, LABEL_MANAGED, LABEL_NAME, LABEL_NAMESPACE
from controller.resources import Agent
from controller.runtime.docker import container_name, volume_names
from controller.store.base import NotFound
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as err:
        pytest.skip(f"no Docker engine: {err}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient) -> Iterator[ServerThread]:
    server = start_gateway(tmp_path_factory.mktemp("home"))
    settings = server.app.state.deps.settings
    try:
        docker_client.images.get(settings.image)
    except docker.errors.ImageNotFound:
        server.stop()
        pytest.skip(f"agent image {settings.image} missing: run `clawpen image build` (make test does)")
    yield server
    server.stop()
    label = f"{LABEL_INSTANCE}={settings.instance}"
    for container in docker_client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for volume in docker_client.volumes.list(filters={"label": label}):
        volume.remove(force=True)


@pytest.fixture(scope="module")
def http(gw: ServerThread) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {login(gw.url)['access_token']}"}
    with httpx.Client(base_url=gw.url, headers=headers, timeout=120) as c:
        yield c


def run_agent(gw: ServerThread, client: docker.DockerClient, name: str) -> Any:
    """The container the Docker runtime would run for this agent (same names, labels, volumes)."""
    settings = gw.app.state.deps.settings
    key = f"default/{name}"
    labels = {
        LABEL_MANAGED: "clawpen",
        LABEL_INSTANCE: settings.instance,
        LABEL_KIND: "Agent",
        LABEL_NAMESPACE: "default",
        LABEL_NAME: name,
    }
    volumes = {}
    for target, volume in volume_names(settings.instance, key).items():
        try:
            client.volumes.get(volume)
        except docker.errors.NotFound:
            client.volumes.create(volume, labels=labels)
        volumes[volume] = {"bind": target, "mode": "rw"}
    return client.containers.run(
        settings.image,
        name=container_name(settings.instance, key),
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
        "import sys, os; os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True); "
        "open(sys.argv[1], 'wb').write(bytes.fromhex(sys.argv[2]))"
    )
    assert container.exec_run(["python3", "-c", code, path, data.hex()]).exit_code == 0


def read(container: Any, path: str) -> bytes | None:
    code = "import sys, os; p = sys.argv[1]; print(open(p, 'rb').read().hex() if os.path.exists(p) else '-')"
    out = container.exec_run(["python3", "-c", code, path]).output.strip()
    return None if out == b"-" else bytes.fromhex(out.decode())


def test_snapshot_change_restore(http: httpx.Client, gw: ServerThread, docker_client: docker.DockerClient) -> None:
    assert http.post("/api/agents", json={"name": "snap-a"}).status_code == 201
    box = run_agent(gw, docker_client, "snap-a")
    write(box, "/data/sessions/main.json", b'{"turns": 3}')
    write(box, "/workspace/todo.txt", b"original")

    made = http.post("/api/agents/snap-a/snapshots")
    assert made.status_code == 201, made.text
    info = made.json()
    assert set(info) == {"id", "agent_id", "created_at", "size_bytes", "sha256"} and info["agent_id"] == "snap-a"
    second = http.post("/api/agents/snap-a/snapshots").json()
    listed = http.get("/api/agents/snap-a/snapshots").json()
    assert [s["id"] for s in listed] == [second["id"], info["id"]]
    assert http.get(f"/api/agents/snap-a/snapshots/{info['id']}").json() == info

    write(box, "/workspace/todo.txt", b"changed")
    write(box, "/data/extra.bin", b"new")
    restored = http.post(f"/api/agents/snap-a/snapshots/{info['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert read(box, "/workspace/todo.txt") == b"original"
    assert read(box, "/data/sessions/main.json") == b'{"turns": 3}'
    assert read(box, "/data/extra.bin") is None
    box.reload()
    assert box.status == "running"

    assert http.delete(f"/api/agents/snap-a/snapshots/{second['id']}").status_code == 204
    assert http.delete(f"/api/agents/snap-a/snapshots/{second['id']}").status_code == 404
    assert http.get("/api/agents/snap-a/snapshots/not-an-id").status_code == 404
    assert http.post("/api/agents/nobody/snapshots").status_code == 404


def test_corrupt_snapshot_restore_is_refused(
    http: httpx.Client, gw: ServerThread, docker_client: docker.DockerClient
) -> None:
    box = docker_client.containers.get(container_name(gw.app.state.deps.settings.instance, "default/snap-a"))
    sid = http.post("/api/agents/snap-a/snapshots").json()["id"]
    data = gw.app.state.deps.settings.home / "snapshots" / "snap-a" / sid / "data.tar"
    data.write_bytes(data.read_bytes()[:-700])
    write(box, "/workspace/todo.txt", b"current")
    answer = http.post(f"/api/agents/snap-a/snapshots/{sid}/restore")
    assert answer.status_code == 422 and "corrupt or truncated" in answer.json()["error"]
    assert read(box, "/workspace/todo.txt") == b"current"


def test_clone_from_snapshot(http: httpx.Client, gw: ServerThread, docker_client: docker.DockerClient) -> None:
    box = docker_client.containers.get(container_name(gw.app.state.deps.settings.instance, "default/snap-a"))
    write(box, "/data/clone-me.txt", b"same bytes")
    sid = http.post("/api/agents/snap-a/snapshots").json()["id"]
    answer = http.post(f"/api/agents/snap-a/snapshots/{sid}/clone", json={"name": "snap-clone"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "snap-clone"
    assert http.get("/api/agents/snap-clone").status_code == 200
    clone = run_agent(gw, docker_client, "snap-clone")
    assert read(clone, "/data/clone-me.txt") == b"same bytes"
    created = http.post("/api/agents", json={"name": "snap-from", "from_snapshot": f"snap-a/{sid}"})
    assert created.status_code == 201, created.text
    assert read(run_agent(gw, docker_client, "snap-from"), "/data/clone-me.txt") == b"same bytes"
    assert http.post("/api/agents", json={"name": "snap-f2", "from_snapshot": "nope"}).status_code == 422
    unknown = http.post("/api/agents", json={"name": "snap-f2", "from_snapshot": "snap-a/20260101T000000000Z-abcdef"})
    assert unknown.status_code == 404
    assert http.get("/api/agents/snap-f2").status_code == 404
    again = http.post(f"/api/agents/snap-a/snapshots/{sid}/clone", json={"name": "snap-clone"})
    assert again.status_code == 409
    bad = http.post(f"/api/agents/snap-a/snapshots/{sid}/clone", json={"name": "Bad_Name"})
    assert bad.status_code == 422


def test_export_delete_import_round_trip(
    http: httpx.Client, gw: ServerThread, docker_client: docker.DockerClient
) -> None:
    settings = gw.app.state.deps.settings
    assert http.post("/api/agents", json={"name": "snap-x", "config": {"env_vars": {"K": "v"}}}).status_code == 201
    box = run_agent(gw, docker_client, "snap-x")
    write(box, "/data/memory.json", b'{"facts": ["sky is blue"]}')
    write(box, "/workspace/report.md", b"# report\n")

    exported = http.get("/api/agents/snap-x/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/x-tar"
    archive = exported.content
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["manifest.json", "agent.yaml", "data.tar"]
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        data = tar.extractfile("data.tar").read()  # type: ignore[union-attr]
    assert hashlib.sha256(data).hexdigest() == manifest["snapshot"]["sha256"]

    # Delete the agent the way the controller would: spec, container, volumes.
    assert http.delete("/api/agents/snap-x").status_code == 204
    box.remove(force=True)
    for volume in volume_names(settings.instance, "default/snap-x").values():
        docker_client.volumes.get(volume).remove(force=True)
    assert http.get("/api/agents/snap-x").status_code == 404

    imported = http.post("/api/agents/import", content=archive, headers={"Content-Type": "application/x-tar"})
    assert imported.status_code == 201, imported.text
    assert imported.json()["name"] == "snap-x"
    assert imported.json()["config"]["env_vars"] == {"K": "v"}
    again = run_agent(gw, docker_client, "snap-x")
    assert read(again, "/data/memory.json") == b'{"facts": ["sky is blue"]}'
    assert read(again, "/workspace/report.md") == b"# report\n"

    conflict = http.post("/api/agents/import", content=archive)
    assert conflict.status_code == 409  # snap-x exists again


def test_corrupt_import_is_refused(http: httpx.Client, gw: ServerThread) -> None:
    archive = http.get("/api/agents/snap-a/export").content
    broken = bytearray(archive)
    broken[len(broken) // 2] ^= 0xFF
    for body in (bytes(broken), archive[: len(archive) // 2], b"garbage" * 100):
        answer = http.post("/api/agents/import?name=snap-broken", content=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]
    assert http.get("/api/agents/snap-broken").status_code == 404
    with pytest.raises(NotFound):
        gw.call(gw.app.state.deps.store.get(Agent, "snap-broken"))
    assert http.post("/api/agents/import", content=b"").status_code == 400
    assert http.post("/api/agents/import?name=Bad_Name", content=archive).status_code == 422
