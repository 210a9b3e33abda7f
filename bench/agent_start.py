"""One agent from apply to Ready and to its first chat reply: the timing loop the start-up benchmarks share.

bench/openclaw_start.py (OpenClaw vs our light agent) and bench/warm_pool.py (with and without a warm
pool) time the same path a real agent takes: translate() of a manifest with a per-agent token,
DockerRuntime.apply with the real hardened settings, the program's readiness path polled, then one
streamed chat turn through the program's own chat request. One copy of that loop means both
benchmarks' "apply → Ready" and "→ first reply" figures are measured the same way.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx

from controller.agent_token import TOKEN_NAME, TOKEN_SCOPE, token_version
from controller.catalog import Catalog
from controller.plan import WorkloadPlan
from controller.programs import program_named
from controller.resources import Agent, parse_resource
from controller.runtime.base import Observed
from controller.runtime.docker import DockerRuntime
from controller.translate import translate


class Resolved:
    """A secret as translate() sees it resolved (scope and version; the value goes to apply)."""

    def __init__(self, scope: str, version: str):
        self.scope, self.version = scope, version


def agent_plan(
    runtime: DockerRuntime, manifest: dict[str, Any], catalog: Catalog, image: str
) -> tuple[WorkloadPlan, dict[str, bytes], str]:
    """The plan for `manifest` (provider key and a fresh agent token as its secrets), their values, the token."""
    agent = parse_resource(manifest)
    assert isinstance(agent, Agent), agent
    token = secrets.token_urlsafe(32)
    values = {"OPENAI_API_KEY": b"sk-bench", TOKEN_NAME: token.encode()}
    plan = translate(
        agent,
        catalog,
        {"OPENAI_API_KEY": Resolved("global", "1")},
        instance=runtime.instance,
        image=image,
        environ={},
        agent_token=Resolved(TOKEN_SCOPE, token_version(token)),
    )
    return plan, values, token


async def apply_to_first_reply(
    runtime: DockerRuntime,
    plan: WorkloadPlan,
    values: dict[str, bytes],
    token: str,
    *,
    ready_within: float,
    reply_within: float,
    token_checked: tuple[str, ...] = (),
) -> tuple[Observed, float, float]:
    """Apply the plan; seconds until Ready and until the first streamed content of one chat turn.

    Ready: the readiness path answers 200, and so does every path in `token_checked` asked with the
    agent's bearer token (a claimed pool container still on its placeholder config refuses it).
    """
    headers = {"Authorization": f"Bearer {token}"}  # every agent program requires its token
    t0 = time.monotonic()
    observed = await runtime.apply(plan, values)
    async with httpx.AsyncClient(timeout=5.0) as http:

        async def answers() -> bool:
            if (await http.get(f"{observed.endpoint}{plan.readiness_path}")).status_code != 200:
                return False
            for path in token_checked:
                if (await http.get(f"{observed.endpoint}{path}", headers=headers)).status_code != 200:
                    return False
            return True

        while True:
            if time.monotonic() - t0 > ready_within:
                checked = ", ".join((plan.readiness_path, *token_checked))
                raise SystemExit(f"{plan.name}: {checked} did not answer 200 within {ready_within:.0f} s")
            try:
                if await answers():
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        ready = time.monotonic() - t0
        request = program_named(plan.program).chat_request("say hello", "bench", "fake-model")
        async with http.stream(
            "POST", f"{observed.endpoint}{request.path}", json=request.body, headers=headers, timeout=reply_within
        ) as answer:
            assert answer.status_code == 200, answer.status_code
            async for line in answer.aiter_lines():
                if line.startswith("data:") and '"content"' in line:
                    break
        replied = time.monotonic() - t0
    return observed, ready, replied

