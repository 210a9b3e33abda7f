"""Attack: mount another agent's volume, or the host, into an agent (issue 10, hole 1).

Walked as an API user would: REST create answers 422 naming the field and the rule; a spec that
reaches the store another way (manifest, import) is Failed by translate and never mounts; and the
Docker runtime re-checks host paths with symlinks resolved right before it creates the container,
so a link swapped after validation cannot point Docker at a forbidden directory.
"""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from controller.plan import LABEL_INSTANCE, Mount, WorkloadPlan
from controller.runtime.base import RuntimeError_
from controller.runtime.docker import DockerRuntime, volume_names
from controller.volume_policy import VolumePolicy
from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread


@pytest.fixture(scope="module")
def allowed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, allowed_dir: Path) -> Iterator[ServerThread]:
    server = start_gateway(tmp_path_factory.mktemp("home"), host_mounts=str(allowed_dir), allowed_volumes="team-*")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(gateway: ServerThread) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {login(gateway.url)['access_token']}"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=10) as c:
        yield c


def create(client: httpx.Client, volumes: list[Any]) -> httpx.Response:
    return client.post("/api/agents", json={"name": f"a{uuid.uuid4().hex[:8]}", "config": {"volumes": volumes}})


@pytest.mark.parametrize(
    ("volume", "rule"),
    [
        ("clawpen_default_default_victim_data:/mnt/x", "belongs to Claw Pen"),
        ("clawpen_otherinst_default_victim_workspace:/mnt/x", "belongs to Claw Pen"),
        ("CLAWPEN_default_default_victim_data:/mnt/x", "belongs to Claw Pen"),
        ("someones-volume:/mnt/x", "CLAWPEN_ALLOWED_VOLUMES"),
        ("/var/run:/mnt/x", "outside the allowed host directories"),
        ("/home:/mnt/x", "outside the allowed host directories"),
        ("/usr:/mnt/x", "outside the allowed host directories"),
    ],
)
def test_forbidden_mounts_are_422_naming_field_and_rule(client: httpx.Client, volume: str, rule: str) -> None:
    answer = create(client, [volume])
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(e["field"].startswith("config.volumes") and rule in e["message"] for e in detail), detail


def test_replacing_an_agent_is_held_to_the_same_rules(client: httpx.Client) -> None:
    """PUT (replace) is refused up front like POST: the stored spec stays as it was."""
    name = f"a{uuid.uuid4().hex[:8]}"
    assert client.post("/api/agents", json={"name": name}).status_code == 201
    for volume, rule in (
        ("clawpen_default_default_victim_data:/mnt/x", "belongs to Claw Pen"),
        ("/var/run:/mnt/x", "outside the allowed host directories"),
    ):
        answer = client.put(f"/api/agents/{name}", json={"config": {"volumes": [volume]}})
        assert answer.status_code == 422, answer.text
        assert any(e["field"] == "config.volumes[0].source" and rule in e["message"] for e in answer.json()["detail"])
    sneaky = client.put(f"/api/agents/{name}", json={"config": {"env_vars": {"A": "${CLAWPEN_SECRET_KEY}"}}})
    assert sneaky.status_code == 422 and "config.env_vars.A" in sneaky.text, sneaky.text
    stored = client.get(f"/api/agents/{name}").json()
    assert not stored["config"].get("volumes") and "A" not in (stored["config"].get("env_vars") or {}), stored


def test_a_symlink_out_of_the_allowed_dir_is_refused(client: httpx.Client, allowed_dir: Path) -> None:
    link = allowed_dir / f"escape-{uuid.uuid4().hex[:6]}"
    os.symlink("/var/run", link)
    answer = create(client, [f"{link}:/mnt/x"])
    assert answer.status_code == 422, answer.text
    assert "resolves to '/var/run'" in answer.text or "resolves to '/run'" in answer.text


def test_allowed_mounts_pass(client: httpx.Client, allowed_dir: Path) -> None:
    (allowed_dir / "ref").mkdir(exist_ok=True)
    answer = create(client, [f"{allowed_dir}/ref:/ref:ro", "team-notes:/notes"])
    assert answer.status_code == 201, answer.text


def test_host_mounts_are_off_by_default(tmp_path: Path) -> None:
    server = start_gateway(tmp_path / "home")
    try:
        headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
        answer = httpx.post(
            f"{server.url}/api/agents",
            json={"name": "x", "config": {"volumes": [f"{tmp_path}:/mnt/x"]}},
            headers=headers,
        )
    finally:
        server.stop()
    assert answer.status_code == 422 and "host bind mounts are off" in answer.text


@pytest.mark.docker
def test_runtime_rechecks_a_link_swapped_after_validation(tmp_path: Path, docker_client: Any) -> None:
    """translate saw an allowed path; by apply time it is a link to /var/run: nothing is created."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "data").mkdir()
    policy = VolumePolicy(host_dirs=(str(allowed),))
    instance = f"t{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime(instance, client=docker_client, secrets_root=tmp_path / "secrets", volume_policy=policy)
    os.rmdir(allowed / "data")
    os.symlink("/var/run", allowed / "data")  # the swap
    plan = WorkloadPlan(
        namespace="default",
        name="swap",
        instance=instance,
        image="busybox-not-needed",
        env={},
        memory_mb=64,
        cpu=0.1,
        restart_policy="no",
        mounts=(Mount(str(allowed / "data"), "/mnt/x"),),
    )
    image = docker_client.images.list()[0]  # any local image: the check comes before it matters
    plan = WorkloadPlan(**{**plan.__dict__, "image": image.tags[0] if image.tags else image.id})
    try:
        with pytest.raises(RuntimeError_) as info:
            asyncio.run(runtime.apply(plan))
        assert info.value.reason == "VolumeNotAllowed"
        assert "spec.volumes[0].source" in str(info.value) and "outside the allowed host directories" in str(info.value)
        assert asyncio.run(runtime.observe("default/swap")).exists is False
    finally:
        asyncio.run(runtime.remove("default/swap", volumes=True))
        asyncio.run(runtime.close())


def _with_spec(archive: bytes, edit: Any) -> bytes:
    """The export archive with its agent.yaml edited (what an attacker hands to `clawpen import`)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "agent.yaml":
                doc = yaml.safe_load(data)
                edit(doc["spec"])
                data = yaml.safe_dump(doc).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.docker
@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        (lambda s: s.update(volumes=[{"source": "clawpen_x_default_victim_data", "target": "/mnt/x"}]), "Claw Pen"),
        (lambda s: s.update(volumes=[{"source": "/var/run", "target": "/mnt/x"}]), "outside the allowed"),
        (lambda s: s.update(env={"A": "${CLAWPEN_SECRET_KEY}"}), "is not an allowed variable"),
    ],
    ids=["other-agent-volume", "host-path", "secret-variable"],
)
def test_imported_archive_is_held_to_the_same_rules(
    client: httpx.Client, gateway: ServerThread, docker_client: Any, agent_image: str, edit: Any, rule: str
) -> None:
    settings = gateway.app.state.deps.settings
    name = f"x{uuid.uuid4().hex[:6]}"
    assert client.post("/api/agents", json={"name": name}).status_code == 201
    labels = {LABEL_INSTANCE: settings.instance}
    for volume in volume_names(settings.instance, f"default/{name}").values():
        docker_client.volumes.create(volume, labels=labels)
    try:
        exported = client.get(f"/api/agents/{name}/export", timeout=120)
        assert exported.status_code == 200, exported.text
        evil = _with_spec(exported.content, edit)
        answer = client.post(f"/api/agents/import?name={name}-evil", content=evil, timeout=120)
        assert answer.status_code == 422, answer.text
        assert rule in answer.text
        assert client.get(f"/api/agents/{name}-evil").status_code == 404
    finally:
        for volume in docker_client.volumes.list(filters={"label": f"{LABEL_INSTANCE}={settings.instance}"}):
            volume.remove(force=True)
