"""AndOR registration follows an agent's life: registered once (also across a controller
restart), re-registered when its triggers change, unregistered on delete, and a bridge that is down
shows on the Registered condition without touching the agent's own phase."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from controller.andor import registration
from controller.commands.resources import apply_resource
from controller.resources import API_VERSION, Agent, Phase, Team, parse_resource
from tests.e2e.conftest import Plane
from tests.fakes.andor_bridge import FakeAndorBridge
from tests.fakes.server_thread import ServerThread

pytestmark = pytest.mark.docker


def agent(name: str, **annotations: str) -> Agent:
    return parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Agent",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"provider": "ollama", "resources": {"preset": "nano"}},
        }
    )


def team(name: str, member: str, keywords: list[str]) -> Team:
    return parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Team",
            "metadata": {"name": name},
            "spec": {"agents": {"books": {"agent": member}}, "routing": {"books": {"keywords": keywords}}},
        }
    )


def test_payload_takes_team_keywords_and_annotations():
    a = agent("finn", **{"clawpen.dev/display-name": "Finn", "clawpen.dev/emoji": "🦊", "clawpen.dev/triggers": "Tax"})
    payload = registration(a, [team("finance", "finn", ["Invoice", "ledger"]), team("other", "someone", ["x"])])
    assert payload == {
        "agent_id": "finn",
        "display_name": "Finn",
        "triggers": ["invoice", "ledger", "tax"],
        "emoji": "🦊",
    }


async def _registered(plane: Plane, name: str, status: str) -> Agent:
    def check(a: Agent) -> bool:
        cond = a.status.condition("Registered") if a.status else None
        return cond is not None and cond.status == status

    return await plane.wait_for(name, check, 30, f"Registered={status}")


async def test_registration_follows_the_agent(e2e_settings):
    bridge = FakeAndorBridge()
    server = ServerThread(bridge.app()).start()
    plane = Plane(replace(e2e_settings, andor_bridge_url=server.url))
    try:
        await apply_resource(plane.store, agent("kai"))
        await plane.start_controller()
        await plane.wait_running("kai")
        await _registered(plane, "kai", "True")
        assert bridge.agents["kai"]["display_name"] == "kai"

        # a restarted controller registers nothing twice
        await plane.stop_controller()
        await plane.start_controller()
        await plane.controller.ready.wait()
        await asyncio.sleep(1.0)
        assert bridge.count("POST", "kai") == 1

        # a team naming the agent changes its triggers: registered again with them
        await apply_resource(plane.store, team("books", "kai", ["invoice"]))
        await plane.controller.resync()
        await plane.until(lambda: _async(bridge.agents["kai"]["triggers"] == ["invoice"]), 30, "new triggers")

        # the bridge goes down: the agent stays Running, only Registered says so; back up → registered
        bridge.down = True
        await apply_resource(plane.store, agent("lou"))
        lou = await _registered(plane, "lou", "False")
        assert "503" in lou.status.condition("Registered").message
        running = await plane.wait_running("lou")
        assert running.status.phase == Phase.RUNNING
        bridge.down = False
        await _registered(plane, "lou", "True")
        assert "lou" in bridge.agents

        # delete → unregistered
        await plane.store.delete(Agent, "kai")
        await plane.until(lambda: _async("kai" not in bridge.agents), 30, "kai unregistered")
        assert bridge.count("DELETE", "kai") >= 1
    finally:
        await plane.cleanup()
        server.stop()


async def test_deleted_while_controller_down_is_unregistered_on_start(e2e_settings):
    bridge = FakeAndorBridge()
    server = ServerThread(bridge.app()).start()
    plane = Plane(replace(e2e_settings, andor_bridge_url=server.url))
    try:
        await apply_resource(plane.store, agent("mia"))
        await plane.start_controller()
        await _registered(plane, "mia", "True")
        await plane.stop_controller()
        await plane.runtime.remove("default/mia", volumes=True)  # container gone too: only the state knows
        await plane.store.delete(Agent, "mia")
        await plane.start_controller()
        await plane.until(lambda: _async("mia" not in bridge.agents), 30, "mia unregistered after restart")
    finally:
        await plane.cleanup()
        server.stop()


async def _async(value: bool) -> bool:
    return value
