"""The gateway in kube-store mode, against kmock: REST writes Agent custom resources, reads them back,
reports the Kubernetes runtime, deletes. (The same scenario against a real API server, with the
operator turning the resources into workloads, is in tests/e2e/kube.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import kmock
import pytest

from api.app import create_app
from controller.catalog import load_catalog
from controller.kube.client import api_client_for
from controller.runtime.kubernetes import KubernetesRuntime
from controller.settings import REPO_ROOT, Settings
from controller.store.kube import KubeStore

AGENTS = "clawpen.dev/v1alpha1/agents"
PASSWORD = "kube mode admin password"


@pytest.fixture
async def http(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    kmock.resources[AGENTS] = kmock.ResourceInfo(kind="Agent", namespaced=True, subresources={"status"})
    kmock.resources["clawpen.dev/v1alpha1/teams"] = kmock.ResourceInfo(kind="Team", namespaced=True)
    for resource in ("apps/v1/statefulsets", "v1/pods"):
        kmock.resources[resource] = kmock.ResourceInfo(namespaced=True)
    settings = Settings(
        home=tmp_path, instance="t-gw", store="kube", runtime="kubernetes", namespace="default"
    )
    store = KubeStore(api_client_for(str(kmock.url)), namespace="default")
    runtime = KubernetesRuntime(api_client_for(str(kmock.url)), instance="t-gw")
    app = create_app(
        settings,
        store,
        runtime,
        load_catalog(REPO_ROOT / "templates"),
        env={"CLAWPEN_ADMIN_PASSWORD": PASSWORD},
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gw") as c,
    ):
        answer = await c.post("/auth/login", json={"password": PASSWORD})
        assert answer.status_code == 200, answer.text
        c.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield c
    await store.close()
    await runtime.close()


async def test_create_list_update_delete_agents(
    http: httpx.AsyncClient, kmock: kmock.KubernetesEmulator
) -> None:
    body = {
        "name": "finn",
        "config": {"llm_provider": "openai", "llm_model": "gpt-4o", "env_vars": {"A": "1"}},
    }
    created = await http.post("/api/agents", json=body)
    assert created.status_code in (200, 201), created.text
    stored = kmock.objects[AGENTS, "default", "finn"]
    assert stored["spec"]["provider"] == "openai" and stored["spec"]["env"] == {"A": "1"}

    listed = await http.get("/api/agents")
    assert listed.status_code == 200 and "finn" in listed.text

    stopped = await http.post("/api/agents/finn/stop")
    assert stopped.status_code in (200, 202), stopped.text
    assert kmock.objects[AGENTS, "default", "finn"]["spec"]["state"] == "Stopped"

    deleted = await http.delete("/api/agents/finn")
    assert deleted.status_code in (200, 202, 204), deleted.text
    assert kmock.objects[AGENTS, "default", "finn"].deleted
    assert (await http.get("/api/agents/finn")).status_code == 404


async def test_runtime_status_names_kubernetes(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/runtime/status")
    assert answer.status_code == 200, answer.text
    assert "kube" in answer.text.lower()
