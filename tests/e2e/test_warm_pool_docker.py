"""End to end: a warm pool of real OpenClaw containers on the real Docker engine.

One in-process control plane (FileStore, DockerRuntime, Controller) for the whole module, with a
template `pooled-claw` (program openclaw, warm_pool: 2) in a copy of the shipped templates. The two
pool containers boot once (minutes on a loaded machine); the tests then run in order against them:
nothing secret in a slot, two racing agents get two different slots and answer chats, the pool
refills, a controller restart adopts the claimed containers, a template change drains the pool,
and deleting an agent removes its claimed container, files and (asked) volumes. Only objects
labelled with this module's unique instance are touched, and all of them are removed at the end.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import pytest_asyncio
import yaml

from controller.agent_token import open_agent_tokens
from controller.catalog import load_catalog
from controller.plan import LABEL_INSTANCE
from controller.programs import program_named
from controller.resources import Agent, AgentSpec, ObjectMeta
from controller.runtime.docker import container_name
from controller.runtime.docker_pool import LABEL_POOL_SHAPE, slot_prefix
from controller.secrets import SecretStore
from controller.settings import Settings
from controller.warm_pool.status import with_pools
from tests.e2e.conftest import Plane
from tests.fakes.model_server import FakeModelServer, Script
from tests.support.docker_objects import remove_instance

pytestmark = [
    pytest.mark.docker,
    pytest.mark.openclaw,
    pytest.mark.timeout(1200),
    pytest.mark.asyncio(loop_scope="module"),
]
ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-pool-" + uuid.uuid4().hex
TEMPLATE = "pooled-claw"
POOL = 2


def _templates(dest: Path, size: int, program: str = "openclaw") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "templates" / "providers.yaml", dest / "providers.yaml")
    data = yaml.safe_load((ROOT / "templates" / "agents.yaml").read_text())
    data["templates"][TEMPLATE] = {
        "name": "Pooled OpenClaw",
        "warmPool": size,
        # Two cores' worth of quota, like the OpenClaw e2e: its start has fixed internal deadlines.
        "config": {"program": program, "llm_provider": "openai", "llm_model": "fake-model", "cpu_cores": 2.0},
    }
    (dest / "agents.yaml").write_text(yaml.safe_dump(data))
    return dest


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    server.default = Script(reply=lambda body: "pooled claw says hi")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def openclaw_image(docker_client: Any) -> str:
    from controller.programs.images import build_openclaw_image

    tag, _ = build_openclaw_image(client=docker_client, progress=lambda line: None)
    return tag


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool_plane(
    tmp_path_factory: pytest.TempPathFactory, agent_image: str, openclaw_image: str, docker_client: Any
) -> AsyncIterator[Plane]:
    home = tmp_path_factory.mktemp("pool-home")
    base = Settings.from_env({"CLAWPEN_HOME": str(home / "home")})
    settings = replace(
        base,
        instance=f"t{uuid.uuid4().hex[:8]}",
        image=agent_image,
        resync_seconds=2.0,
        templates_dir=_templates(home / "templates", POOL),
    )
    plane = Plane(settings)
    SecretStore.from_settings(settings).set("OPENAI_API_KEY", API_KEY.encode())
    await plane.start_controller()
    try:
        yield plane
    finally:
        await plane.stop_controller()
        pool = getattr(plane.runtime, "warm_pool", None)
        if pool is not None:
            await asyncio.to_thread(pool.drain)  # slots and their placeholder files
        await plane.cleanup()
        remove_instance(docker_client, settings.instance)


def _slots(client: docker.DockerClient, instance: str, ready: bool = False) -> list[Any]:
    found = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}):
        if not container.name.startswith(slot_prefix(instance)):
            continue
        if ready:
            ports = container.attrs["NetworkSettings"]["Ports"].get("18789/tcp") or []
            try:
                url = f"http://127.0.0.1:{ports[0]['HostPort']}/readyz"
                if httpx.get(url, timeout=2).status_code != 200:
                    continue
            except (httpx.HTTPError, IndexError, KeyError):
                continue
        found.append(container)
    return found


async def _until(check: Any, what: str, timeout: float = 900) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = await asyncio.to_thread(check)
        if result:
            return result
        await asyncio.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def _agent(name: str, fake: FakeModelServer) -> Agent:
    return Agent(
        metadata=ObjectMeta(name=name),
        spec=AgentSpec(template=TEMPLATE, base_url=fake.container_url()),  # type: ignore[call-arg]
    )


async def test_pool_fills_and_its_containers_carry_no_secrets(pool_plane: Plane, docker_client: Any) -> None:
    instance = pool_plane.settings.instance
    slots = await _until(
        lambda: len(_slots(docker_client, instance, ready=True)) >= POOL and _slots(docker_client, instance),
        "the pool to boot",
    )
    assert len(slots) == POOL
    # What GET /api/templates shows: the pool task's report, once its next pass saw both slots answer.
    home, catalog = pool_plane.settings.ensure_home(), load_catalog(pool_plane.settings.templates_dir)

    def reported() -> Any:
        entries = [{**t.model_dump(mode="json"), "id": k} for k, t in catalog.templates.items()]
        return next(e["warm_pool"] for e in with_pools(entries, home, "docker") if e["id"] == TEMPLATE)

    pool = await _until(lambda: reported()["ready"] == POOL and reported(), "the pool's report", 120)
    assert pool == {"size": POOL, "ready": POOL, "starting": 0, "enabled": True, "reason": None}
    for container in slots:
        container.reload()
        inspect = json.dumps(container.attrs)
        assert API_KEY not in inspect
        assert "OPENCLAW_GATEWAY_TOKEN" not in inspect and "OPENAI_API_KEY" not in inspect
        assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert container.attrs["HostConfig"]["Memory"] == 2048 * 1024 * 1024
        assert container.attrs["Config"]["User"] == "10001:10001"
        # the secret directory holds the placeholder config and throwaway token, nothing else
        mounts = [m for m in container.attrs["Mounts"] if m["Destination"] == "/run/secrets"]
        assert len(mounts) == 1 and mounts[0]["RW"] is False
        files = {p.name: p.read_bytes() for p in Path(mounts[0]["Source"]).iterdir()}
        assert sorted(files) == ["clawpen-pool.json", "openclaw.json"]
        assert all(API_KEY.encode() not in value for value in files.values())
        assert b'apiKey": "unused' in files["openclaw.json"]


async def test_racing_claims_get_two_slots_and_answer(
    pool_plane: Plane, docker_client: Any, fake: FakeModelServer
) -> None:
    instance = pool_plane.settings.instance
    before = {c.id for c in _slots(docker_client, instance, ready=True)}
    assert len(before) == POOL
    await asyncio.gather(pool_plane.store.create(_agent("pa", fake)), pool_plane.store.create(_agent("pb", fake)))
    agents = await asyncio.gather(pool_plane.wait_running("pa", 300), pool_plane.wait_running("pb", 300))
    ids = [a.status.container_id for a in agents if a.status]
    assert len(set(ids)) == 2 and set(ids) <= before, (ids, before)  # two different warm containers
    tokens = open_agent_tokens(pool_plane.settings.ensure_home(), pool_plane.runtime)
    for agent in agents:
        container = docker_client.containers.get(container_name(instance, agent.key))
        assert LABEL_POOL_SHAPE in container.labels  # the pool's container, renamed
        inspect = json.dumps(container.attrs)
        token = await tokens.get(agent.key)
        assert token and token not in inspect and API_KEY not in inspect
        request = program_named("openclaw").chat_request(f"hello from {agent.metadata.name}", "main", None)
        assert agent.status and agent.status.endpoint
        response = await asyncio.to_thread(
            httpx.post,
            f"{agent.status.endpoint}{request.path}",
            json={**request.body, "stream": False},
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        )
        assert response.status_code == 200, response.text
        assert "pooled claw says hi" in response.text
    assert any(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in fake.requests), "key not used"


async def test_pool_refills_after_claims(pool_plane: Plane, docker_client: Any) -> None:
    instance = pool_plane.settings.instance
    claims = [pool_plane.runtime.claims.get(k) for k in ("default/pa", "default/pb")]  # type: ignore[attr-defined]
    claimed = {c.container for c in claims if c is not None}
    # Refilled one slot at a time (two OpenClaw boots at once miss its startup deadlines when busy):
    # the first new slot is started as soon as the claims are made.
    slots = await _until(lambda: _slots(docker_client, instance), "a refill", 120)
    assert slots and not {c.id for c in slots} & claimed
    assert all(c.name.startswith(slot_prefix(instance)) for c in slots)


async def test_restart_adopts_claimed_containers(pool_plane: Plane, docker_client: Any) -> None:
    before = (await pool_plane.store.get(Agent, "pa")).status
    await pool_plane.stop_controller()
    await pool_plane.runtime.close()
    pool_plane.runtime = type(pool_plane.runtime)(  # a fresh runtime reads the claim book from disk
        pool_plane.settings.instance,
        claims_file=pool_plane.settings.ensure_home() / "warm-pool-claims.json",
        ports_file=pool_plane.settings.ensure_home() / "ports.json",
    )
    await pool_plane.start_controller()
    await asyncio.sleep(6)  # three resyncs
    after = await pool_plane.wait_running("pa", 60)
    assert before and after.status and after.status.container_id == before.container_id
    assert after.status.endpoint == before.endpoint


async def test_delete_removes_claimed_container_files_and_volumes(pool_plane: Plane, docker_client: Any) -> None:
    instance = pool_plane.settings.instance
    claim = pool_plane.runtime.claims.get("default/pa")  # type: ignore[attr-defined]
    assert claim is not None and claim.secrets_dir
    await pool_plane.store.delete(Agent, "pa")
    name = container_name(instance, "default/pa")

    def gone() -> bool:
        try:
            docker_client.containers.get(name)
            return False
        except docker.errors.NotFound:
            return True

    await _until(gone, "the claimed container to go", 60)
    assert not Path(claim.secrets_dir).exists()
    await pool_plane.runtime.remove("default/pa", volumes=True)  # what DELETE ?volumes=true does
    for volume in claim.volumes.values():
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(volume)
    assert pool_plane.runtime.claims.get("default/pa") is None  # type: ignore[attr-defined]


async def test_template_change_drains_the_pool_and_replaces_agents_keeping_volumes(
    pool_plane: Plane, docker_client: Any
) -> None:
    instance = pool_plane.settings.instance
    claim = pool_plane.runtime.claims.get("default/pb")  # type: ignore[attr-defined]
    assert claim is not None and claim.container
    templates = _templates(pool_plane.settings.ensure_home() / "templates2", POOL, program="clawpen")
    assert pool_plane.controller is not None
    pool_plane.controller.reconciler.catalog = load_catalog(templates)  # what a template edit + restart does
    await _until(lambda: not _slots(docker_client, instance), "the pool to drain", 120)
    pool_plane.controller.queue.add("default/pb")
    agent = await pool_plane.wait_for(
        "pb", lambda a: bool(a.status and a.status.container_id not in (None, claim.container)), 120, "a replacement"
    )
    container = docker_client.containers.get(container_name(instance, "default/pb"))
    assert container.id == (agent.status.container_id if agent.status else None)
    assert LABEL_POOL_SHAPE not in container.labels  # a container of the agent's own now
    volumes = {m["Destination"]: m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"}
    assert volumes == claim.volumes  # the data it had in the pool container stays with it
