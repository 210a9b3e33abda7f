"""Split mode: the controller drives an engine on another address over TLS, and the gateway chats
with an agent there. The second engine is a real dockerd (see remote_engine.py), at 127.0.0.2, so
an endpoint that still said 127.0.0.1 — or a secret bind-mounted from this machine's tmpfs, which a
real remote engine could not see — would show."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace

import docker
import pytest
from websockets.sync.client import connect

from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, parse_resource
from controller.runtime.docker import container_name
from tests.api.conftest import login, start_gateway
from tests.e2e.conftest import Plane
from tests.e2e.remote_engine import ENGINE_ADDRESS, RemoteEngine, start_remote_engine
from tests.fakes.model_server import FakeModelServer, Script

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, agent_image: str) -> Iterator[RemoteEngine]:
    engine = start_remote_engine(tmp_path_factory.mktemp("engine"))
    try:
        # No registry: the image travels like `docker save | docker -H remote load`.
        local = docker.from_env()
        engine.client().images.load(b"".join(local.images.get(agent_image).save(named=True)))
        yield engine
    finally:
        engine.stop()


async def test_agent_on_a_remote_engine_over_tls(remote: RemoteEngine, e2e_settings, monkeypatch) -> None:
    for key, value in remote.env().items():
        monkeypatch.setenv(key, value)
    model = FakeModelServer().start()
    plane = Plane(replace(e2e_settings))
    gateway = None
    try:
        from controller.secrets import SecretStore

        SecretStore.from_settings(plane.settings).set("REMOTE_API_KEY", b"sk-remote-secret-value")
        spec = {
            "provider": "ollama",  # keyless; the secret below is any file secret the agent is given
            "baseURL": model.container_url(),
            "model": "fake-1",
            "secrets": ["REMOTE_API_KEY"],
            "resources": {"memoryMB": 256},
        }
        await apply_resource(
            plane.store,
            parse_resource({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "far"}, "spec": spec}),
        )
        await plane.start_controller()
        agent = await plane.wait_running("far", timeout=90)
        assert agent.status.endpoint.startswith(f"http://{ENGINE_ADDRESS}:"), agent.status.endpoint

        client = remote.client()
        attrs = client.api.inspect_container(container_name(plane.settings.instance, "default/far"))
        assert attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == ENGINE_ADDRESS
        secrets_mount = next(m for m in attrs["Mounts"] if m["Destination"] == "/run/secrets")
        assert secrets_mount["Type"] == "volume" and not secrets_mount["RW"]  # no host path from this machine
        assert "sk-remote-secret-value" not in json.dumps(attrs)
        local = docker.DockerClient(base_url="unix:///var/run/docker.sock")
        assert not local.containers.list(
            all=True, filters={"name": container_name(plane.settings.instance, "default/far")}
        )  # it runs on the second engine only

        far = client.containers.get(container_name(plane.settings.instance, "default/far"))
        code, out = far.exec_run(["python3", "-c", "print(open('/run/secrets/REMOTE_API_KEY').read())"])
        assert (code, out.decode().strip()) == (0, "sk-remote-secret-value")

        model.push(Script(reply="hello from far away"))
        gateway = start_gateway(plane.settings.home)
        token = login(gateway.url)["access_token"]

        def chat() -> list[dict]:
            frames: list[dict] = []
            with connect(f"{gateway.ws_url}/api/agents/far/chat?token={token}") as ws:
                ws.send(json.dumps({"content": "are you there?"}))
                while not (frames and (frames[-1].get("done") or frames[-1].get("error"))):
                    frames.append(json.loads(ws.recv(timeout=60)))
            return frames

        frames = await asyncio.to_thread(chat)
        assert frames[-1].get("done") and frames[-1]["content"] == "hello from far away", frames
    finally:
        if gateway is not None:
            gateway.stop()
        await plane.cleanup()
        model.stop()
