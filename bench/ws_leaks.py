"""Benchmark: what WebSocket clients cost the gateway — log-stream open/close cycles and a chat flood.

Real gateway (uvicorn in a thread, measured in this process), real Docker engine, one real agent
container for the log streams, and a small streaming chat agent that answers slowly. Prints the
process's threads and open fds before and after N log-stream cycles (each: open, receive a line,
close), and its RSS before and after a client sends F frames of 600 KB while a reply streams.

    python bench/ws_leaks.py [--cycles 1000] [--frames 150]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker
import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app  # noqa: E402
from controller.plan import LABEL_INSTANCE, WorkloadPlan  # noqa: E402
from controller.resources import Agent, AgentStatus, Phase  # noqa: E402
from controller.runtime.docker import DockerRuntime  # noqa: E402
from controller.settings import Settings  # noqa: E402
from controller.wiring import open_catalog, open_store  # noqa: E402
from tests.api.harness import ServerThread  # noqa: E402
from tests.api.test_ws import ChatAgent  # noqa: E402

PASSWORD = "benchmark password 123"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def counts() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="clawpen-bench-ws-"))
    instance = f"bench-{uuid.uuid4().hex[:6]}"
    settings = Settings(home=home, instance=instance)
    runtime = DockerRuntime(instance, secrets_root=home / "secrets")
    store = open_store(settings)
    env = {"CLAWPEN_ADMIN_PASSWORD": PASSWORD}
    server = ServerThread(create_app(settings, store, runtime, open_catalog(settings), env=env)).start()
    chat_agent = ServerThread(ChatAgent().app).start()
    client = docker.from_env()
    try:
        token = httpx.post(f"{server.url}/auth/login", json={"password": PASSWORD}).json()["access_token"]
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert http.post("/api/agents", json={"name": "logger"}).status_code == 201
        plan = WorkloadPlan(
            namespace="default",
            name="logger",
            instance=instance,
            image=settings.image,
            env={"CLAWPEN_AGENT_NAME": "logger"},
            memory_mb=96,
            cpu=0.25,
            restart_policy="no",
            mounts=(),
        )
        observed = server.call(runtime.apply(plan), timeout=120)
        client.containers.get(observed.container_id).exec_run(
            ["python3", "-c", "open('/proc/1/fd/1', 'w').write('hello\\n')"]
        )
        url = f"{server.ws_url}/api/agents/logger/logs/stream?tail=1&token={token}"

        def cycle() -> None:
            with connect(url) as ws:
                ws.recv(timeout=30)

        for _ in range(5):
            cycle()
        time.sleep(1)
        before = counts()
        started = time.perf_counter()
        for _ in range(args.cycles):
            cycle()
        took = time.perf_counter() - started
        time.sleep(3)
        after = counts()
        print(f"log stream: {args.cycles} open/close cycles in {took:.1f} s")
        print(f"  threads {before[0]} -> {after[0]}, open fds {before[1]} -> {after[1]}")

        assert http.post("/api/agents", json={"name": "talker"}).status_code == 201
        status = AgentStatus(phase=Phase.RUNNING, endpoint=chat_agent.url)
        server.call(store.update_status(Agent, "talker", status))
        big = json.dumps({"content": "x" * 600_000})
        rss_before = peak = rss_mb()
        sent, code = 0, None
        with connect(f"{server.ws_url}/api/agents/talker/chat?token={token}", max_size=None) as ws:
            ws.send(json.dumps({"content": "slow"}))
            ws.recv(timeout=10)
            try:
                for _ in range(args.frames):
                    ws.send(big)
                    sent += 1
            except ConnectionClosed:
                pass
            for _ in range(80):  # let the gateway take in what was sent; keep the peak
                peak = max(peak, rss_mb())
                time.sleep(0.1)
            code = ws.close_code
        print(f"chat flood: {sent} frames of 600 KB sent while a reply streams; close code {code}")
        print(f"  RSS {rss_before:.0f} MiB before, peak {peak:.0f} MiB within 8 s")
    finally:
        server.stop()
        chat_agent.stop()
        label = f"{LABEL_INSTANCE}={instance}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for volume in client.volumes.list(filters={"label": label}):
            volume.remove(force=True)
        for network in client.networks.list():
            if instance in network.name:
                network.remove()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
