"""Team status follows its agents through a real FileStore."""

from pathlib import Path

from controller.resources import API_VERSION, AgentStatus, Phase, Team, parse_resource
from controller.store.files import FileStore
from controller.team_sync import sync_team_statuses


def doc(kind, name, spec):
    return parse_resource({"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec})


async def test_team_status_names_missing_then_ready(tmp_path: Path):
    store = FileStore(tmp_path)
    try:
        await store.create(doc("Team", "books", {"agents": {"receipts": {"agent": "finn"}, "bills": {"agent": "pax"}}}))
        await store.create(doc("Agent", "finn", {}))
        assert await sync_team_statuses(store) == 1
        team = await store.get(Team, "books")
        assert team.status.phase == "Degraded"
        assert team.status.missing_agents == ["pax"] and team.status.not_running_agents == ["finn"]

        await store.create(doc("Agent", "pax", {}))
        for name in ("finn", "pax"):
            from controller.resources import Agent

            await store.update_status(Agent, name, AgentStatus(phase=Phase.RUNNING))
        await sync_team_statuses(store)
        team = await store.get(Team, "books")
        assert team.status.phase == "Ready" and not team.status.missing_agents
        assert await sync_team_statuses(store) == 0  # idempotent: nothing changed, nothing written
    finally:
        await store.close()
