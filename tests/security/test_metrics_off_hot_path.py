"""Hole 5: /api/metrics must not starve the gateway and the controller.

Per-agent `docker stats` calls (1–2 s each) ran on the shared default executor, once per caller:
with 50 agents one call took 18.5 s and stalled everything else for 16 s. Now the engine is asked
once per agent for all concurrent callers (single flight, cached a few seconds), on the runtime's
own bounded pool, never on the default executor; and a local engine is not asked for stats at all
(its stats API answers only at its next 1 s tick, 2.1-2.3 s for 50 agents): usage is read from the
cgroup files, after one inspect per agent for its pid. The engine's calls are observed (counted,
thread recorded) around the real Docker client.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import httpx
import pytest

from api.usage import USAGE_STALE_SECONDS, USAGE_TTL_SECONDS
from controller.plan import WorkloadPlan
from controller.resources import Agent, AgentStatus, Phase
from controller.runtime.docker import STATS_WORKERS
from tests.security.conftest import DockerGateway

pytestmark = pytest.mark.docker

AGENTS = 3
CALLERS = 12


class StatsSpy:
    """Wraps one Docker client call (stats, inspect): how often the engine is asked, from which thread."""

    def __init__(self, api: Any, method: str = "stats"):
        self.api, self.method = api, method
        self.original = getattr(api, method)
        self.threads: list[str] = []
        self.lock = threading.Lock()
        setattr(api, method, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.threads.append(threading.current_thread().name)
        return self.original(*args, **kwargs)

    def restore(self) -> None:
        setattr(self.api, self.method, self.original)


def test_concurrent_metrics_calls_share_one_bounded_gathering(
    docker_gateway: DockerGateway, docker_client: docker.DockerClient, agent_image: str
) -> None:
    gw = docker_gateway
    for i in range(AGENTS):
        name = f"busy{i}"
        assert gw.http.post("/api/agents", json={"name": name}).status_code == 201
        plan = WorkloadPlan(
            namespace="default",
            name=name,
            instance=gw.runtime.instance,
            image=agent_image,
            env={"CLAWPEN_AGENT_NAME": name},
            memory_mb=96,
            cpu=0.25,
            restart_policy="no",
            mounts=(),
        )
        observed = gw.server.call(gw.runtime.apply(plan), timeout=60)
        status = AgentStatus(phase=Phase.RUNNING, endpoint=observed.endpoint)
        gw.server.call(gw.store.update_status(Agent, name, status))
    spy, inspects = StatsSpy(gw.runtime.client.api), StatsSpy(gw.runtime.client.api, "inspect_container")
    try:
        with ThreadPoolExecutor(CALLERS) as pool:
            answers = list(pool.map(lambda _: gw.http.get("/api/metrics"), range(CALLERS)))
        usage = gw.server.app.state.deps.usage
        usage.ttl = usage.stale = 0  # a second, fresh gathering: the pids are known by now
        again = gw.http.get("/api/metrics")
        usage.ttl, usage.stale = USAGE_TTL_SECONDS, USAGE_STALE_SECONDS
    finally:
        spy.restore()
        inspects.restore()
    assert again.status_code == 200 and len(again.json()["agents"]) == AGENTS, again.text
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    for answer in answers:
        body = answer.json()
        assert body["agents_running"] == AGENTS and len(body["agents"]) == AGENTS, body
        assert all(m["memory_mb"] > 1 for m in body["agents"]), body
    # A local engine's stats API waits for its 1 s collection tick: usage is read from the cgroup files
    # instead, after one inspect per agent (its pid) for all callers and both gatherings.
    assert spy.threads == [], f"the engine's stats API was asked {len(spy.threads)} times"
    assert len(inspects.threads) == AGENTS, f"{CALLERS} callers inspected {len(inspects.threads)} times"
    assert all(t.startswith("clawpen-stats") for t in inspects.threads), inspects.threads
    assert STATS_WORKERS <= 64


def test_a_stopped_agent_is_left_out_not_an_error(
    docker_gateway: DockerGateway, docker_client: docker.DockerClient
) -> None:
    gw = docker_gateway
    docker_client.containers.get(f"clawpen_{gw.runtime.instance}_default_busy0").stop(timeout=1)
    usage = gw.server.app.state.deps.usage
    usage.ttl = usage.stale = 0  # a fresh gathering, not the summary kept from the test above
    answer = httpx.get(f"{gw.server.url}/api/metrics", headers=gw.http.headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert {m["id"] for m in answer.json()["agents"]} == {f"busy{i}" for i in range(1, AGENTS)}
