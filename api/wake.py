"""Wake a suspended agent for a chat message (spec.idle; the mechanism is in controller.idle).

The chat relays (agent WebSocket, team chat) call `wake_for_chat` before they forward a message.
It records the chat activity first and then looks at the container, in that order (see the race
note in controller.idle), so a message never reaches a frozen agent and the client does nothing
special: the first message after a quiet period is simply answered a few milliseconds later.
Agents without spec.idle cost nothing here (no file, no inspect).
"""

from __future__ import annotations

from api.context import Deps
from controller.idle import Activity, Suspendable
from controller.resources import Agent
from controller.runtime.base import RuntimeError_


async def wake_for_chat(d: Deps, agent: Agent) -> str | None:
    """Record activity and unpause a paused agent; a problem to tell the client, or None."""
    if agent.spec.idle is None:
        return None
    Activity(d.settings.home).touch(agent.key)
    runtime = d.runtime
    if not isinstance(runtime, Suspendable):
        return None
    try:
        observed = await runtime.observe(agent.key)
        if observed.state == "paused":
            await runtime.unpause(agent.key)
    except RuntimeError_ as err:  # e.g. deleted while we woke it
        return f"agent {agent.name!r} could not be woken: {err}"
    if not observed.exists:
        Activity(d.settings.home).forget(agent.key)
        return f"agent {agent.name!r} has no container (it may have just been deleted)"
    return None
