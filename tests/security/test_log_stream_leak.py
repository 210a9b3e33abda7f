"""Hole 6: closing a log-stream WebSocket must release its reader thread and its engine connection.

The interrupt used to call `shutdown` on a `socket.SocketIO` (which has none); the error was
swallowed and every closed follower kept a thread blocked on a Docker connection for good. Many
open/close cycles against the real engine must end with the process's threads and fds where
they started.
"""

from __future__ import annotations

import json
import os
import threading
import time

import docker
import pytest
from websockets.sync.client import connect

from controller.plan import WorkloadPlan
from tests.security.conftest import DockerGateway

pytestmark = pytest.mark.docker

CYCLES = 150


def counts() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def settle(baseline: tuple[int, int], timeout: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    now = counts()
    while time.monotonic() < deadline and (now[0] > baseline[0] or now[1] > baseline[1]):
        time.sleep(0.1)
        now = counts()
    return now


def test_closed_log_streams_leave_no_threads_or_connections(
    docker_gateway: DockerGateway, docker_client: docker.DockerClient, agent_image: str
) -> None:
    gw = docker_gateway
    assert gw.http.post("/api/agents", json={"name": "logger"}).status_code == 201
    plan = WorkloadPlan(
        namespace="default",
        name="logger",
        instance=gw.runtime.instance,
        image=agent_image,
        env={"CLAWPEN_AGENT_NAME": "logger"},
        memory_mb=128,
        cpu=0.25,
        restart_policy="no",
        mounts=(),
    )
    observed = gw.server.call(gw.runtime.apply(plan), timeout=60)
    docker_client.containers.get(observed.container_id).exec_run(
        ["python3", "-c", "open('/proc/1/fd/1', 'w').write('hello from the log\\n')"]
    )
    url = f"{gw.server.ws_url}/api/agents/logger/logs/stream?tail=1&token={gw.tokens['access_token']}"

    def cycle() -> None:
        with connect(url) as ws:
            frame = json.loads(ws.recv(timeout=20))  # the follow request is open on the engine
            assert "message" in frame, frame

    for _ in range(5):  # warm up pools (httpx, the SDK's connection pool, the default executor)
        cycle()
    baseline = settle(counts(), timeout=2)
    for _ in range(CYCLES):
        cycle()
    threads, fds = settle(baseline)
    assert threads <= baseline[0] + 2, f"threads {baseline[0]} -> {threads} after {CYCLES} closed streams"
    assert fds <= baseline[1] + 4, f"fds {baseline[1]} -> {fds} after {CYCLES} closed streams"
