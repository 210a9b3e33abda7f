"""The list route's caches (per-resourceVersion JSON, whole answers) never serve a stale object."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from api.convert import agent_out
from api.render_cache import RenderCache
from controller.resources import API_VERSION, Agent, AgentStatus, Phase, parse_resource
from controller.store.files import FileStore
from tests.api.harness import ServerThread


def agent(name: str, model: str) -> Agent:
    doc = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": {"model": model}}
    return parse_resource(doc)


def test_every_change_is_rendered_fresh(tmp_path: Path) -> None:
    async def run() -> None:
        store = FileStore(tmp_path)
        renders: list[str] = []

        def render(a: Agent) -> str:
            renders.append(a.name)
            return agent_out(a).model_dump_json()

        cache = RenderCache(render)
        await store.create(agent("one", "m1"))
        first = await store.get(Agent, "one")
        assert json.loads(cache.json(first))["config"]["llm_model"] == "m1"
        assert json.loads(cache.json(await store.get(Agent, "one"))) == json.loads(cache.json(first))
        assert renders == ["one"]  # same resourceVersion: rendered once

        await store.replace(agent("one", "m2"))  # an API write
        assert json.loads(cache.json(await store.get(Agent, "one")))["config"]["llm_model"] == "m2"

        await store.update_status(Agent, "one", AgentStatus(phase=Phase.RUNNING))  # a status write
        assert json.loads(cache.json(await store.get(Agent, "one")))["status"] == "running"

        spec_file = tmp_path / "agents" / "one.yaml"  # a hand edit behind the store's back
        spec_file.write_text(spec_file.read_text().replace("m2", "m3"))
        assert json.loads(cache.json(await store.get(Agent, "one")))["config"]["llm_model"] == "m3"

        await store.delete(Agent, "one")  # re-created: new uid, even if a resourceVersion repeated
        await store.create(agent("one", "m4"))
        assert json.loads(cache.json(await store.get(Agent, "one")))["config"]["llm_model"] == "m4"
        assert len(renders) == 5
        await store.close()

    asyncio.run(run())


def test_list_answers_follow_status_writes_and_hand_edits(gateway: ServerThread, client: httpx.Client) -> None:
    """The list route's whole-answer cache (PageCache over the store's shared list) and the
    per-agent JSON: the same query asked again after each kind of change answers the change."""
    for name in ("pc-one", "pc-two"):
        assert client.post("/api/agents", json={"name": name, "project": "pc", "state": "stopped"}).status_code == 201

    def listed() -> dict[str, dict[str, object]]:
        answer = client.get("/api/agents", params={"project": "pc"})
        assert answer.status_code == 200, answer.text
        return {a["id"]: a for a in answer.json()}

    assert listed()["pc-one"]["status"] == "pending"
    assert listed() == listed()
    store = gateway.app.state.deps.store
    gateway.call(store.update_status(Agent, "pc-one", AgentStatus(phase=Phase.RUNNING)))
    assert listed()["pc-one"]["status"] == "running"
    spec_file = Path(store.home) / "agents" / "pc-two.yaml"  # a hand edit behind the store's back
    spec_file.write_text(spec_file.read_text().replace("project: pc", "project: pc\n  model: hand-edited"))
    assert listed()["pc-two"]["config"]["llm_model"] == "hand-edited"
    assert client.get("/api/agents", params={"project": "pc", "limit": "1"}).json()[0]["id"] == "pc-one"
    assert client.delete("/api/agents/pc-one").status_code == 204
    assert list(listed()) == ["pc-two"]
    assert client.delete("/api/agents/pc-two").status_code == 204
    assert listed() == {}
