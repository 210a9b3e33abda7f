"""Chat relay benchmark: per-chunk latency through the gateway's WebSocket vs calling the agent directly.

Setup, all on this host: the fake model server streams chunks whose text is the time.perf_counter()
at which each left it (CLOCK_MONOTONIC, shared by every process on the machine); the agent program
runs as its own process (`python -m agent`) against it. A client reads the same streamed reply
(a) straight from the agent's /v1/chat/completions SSE and (b) through the gateway's
/api/agents/{name}/chat WebSocket, and records arrival time minus send time for every chunk. The
relay's added latency per chunk is (b) minus (a). Run: `python bench/chat_relay.py [rounds] [chunks]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.model_server import FakeModelServer, Script  # noqa: E402

CHUNK_DELAY = 0.005  # between chunks at the model, like a fast local model (200 tokens/s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30, path: str = "/healthz") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


def start_agent(model: FakeModelServer, data_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "CLAWPEN_AGENT_NAME": "bench",
        "CLAWPEN_API_STYLE": "openai",
        "CLAWPEN_BASE_URL": model.url,
        "CLAWPEN_MODEL": "fake",
        "CLAWPEN_DATA_DIR": str(data_dir),
        "CLAWPEN_AGENT_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return url, proc


def direct_round(agent_url: str, session: str) -> list[float]:
    """Per-chunk latency (ms) of one streamed reply read straight from the agent."""
    body = {"messages": [{"role": "user", "content": "go"}], "stream": True, "session": session}
    latencies = []
    with httpx.stream("POST", f"{agent_url}/v1/chat/completions", json=body, timeout=60) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                latencies.append((time.perf_counter() - float(delta)) * 1000)
    return latencies


def summary(name: str, values: list[float]) -> dict[str, float]:
    values = sorted(values)
    stats = {
        "n": len(values),
        "median_ms": statistics.median(values),
        "p95_ms": values[int(0.95 * (len(values) - 1))],
        "mean_ms": statistics.fmean(values),
    }
    print(
        f"{name:>8}: n={stats['n']} median={stats['median_ms']:.3f} ms "
        f"p95={stats['p95_ms']:.3f} ms mean={stats['mean_ms']:.3f} ms"
    )
    return stats


def main(rounds: int = 30, chunks: int = 50) -> None:
    model = FakeModelServer(host="127.0.0.1").start()
    model.default = Script(timestamps=True, chunks=chunks, chunk_delay=CHUNK_DELAY)
    with tempfile.TemporaryDirectory(prefix="clawpen-bench-") as tmp:
        agent_url, agent = start_agent(model, Path(tmp) / "data")
        try:
            print(f"{rounds} rounds x {chunks} chunks, {CHUNK_DELAY * 1000:.0f} ms apart at the model")
            with GatewayRelay(agent_url, Path(tmp)) as relay_round:
                direct_round(agent_url, "warm-d")  # warm-up: connections, imports, first session files
                relay_round(-1)
                direct: list[float] = []
                relayed: list[float] = []
                for i in range(rounds):  # interleaved, so load from anything else hits both paths alike
                    direct += direct_round(agent_url, f"d{i}")
                    relayed += relay_round(i)
            d, r = summary("direct", direct), summary("relay", relayed)
            print(
                f"relay adds {r['median_ms'] - d['median_ms']:.3f} ms per chunk (median), "
                f"{r['p95_ms'] - d['p95_ms']:.3f} ms (p95)"
            )
        finally:
            agent.terminate()
            agent.wait(10)
            model.stop()


ADMIN_PASSWORD = "bench-admin-password-0123"


class GatewayRelay:
    """The gateway in its own process (as `clawpen gateway` runs it) over a file store in which an
    agent `bench` is Running at the agent's URL; rounds go through its chat WebSocket."""

    def __init__(self, agent_url: str, tmp: Path):
        self.agent_url, self.home, self.port = agent_url, tmp / "home", free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: Any = None
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> Callable[[int], list[float]]:
        asyncio.run(self._register_agent())
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CLAWPEN_HOME": str(self.home),
            "CLAWPEN_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-gateway", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{self.port}"
        wait_ready(url, self.proc, path="/health")
        token = httpx.post(f"{url}/auth/login", json={"password": ADMIN_PASSWORD}).json()["access_token"]
        from websockets.sync.client import connect

        url = f"ws://127.0.0.1:{self.port}/api/agents/bench/chat?token={token}"
        self.ws = self.stack.enter_context(connect(url, max_size=None))
        return self.round

    def round(self, i: int) -> list[float]:
        self.ws.send(json.dumps({"content": "go", "session": f"r{i}"}))
        latencies = []
        while True:
            frame = json.loads(self.ws.recv(timeout=60))
            if frame.get("delta"):
                latencies.append((time.perf_counter() - float(frame["content"])) * 1000)
            elif frame.get("done"):
                return latencies
            elif frame.get("error"):
                raise RuntimeError(f"relay error frame: {frame}")

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    async def _register_agent(self) -> None:
        from controller.resources import API_VERSION, Agent, AgentStatus, Phase, parse_resource
        from controller.settings import Settings
        from controller.wiring import open_store

        store = open_store(Settings.from_env({"CLAWPEN_HOME": str(self.home)}))
        try:
            doc = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "bench"}, "spec": {}}
            await store.create(parse_resource(doc))
            await store.update_status(Agent, "bench", AgentStatus(phase=Phase.RUNNING, endpoint=self.agent_url))
        finally:
            await store.close()


def serve_gateway(port: int) -> None:
    """What `clawpen gateway` does, minus a container runtime: the chat relay never touches it."""
    import uvicorn

    from api.app import create_app
    from controller.settings import Settings
    from controller.wiring import open_catalog, open_store

    settings = Settings.from_env()
    try:
        from controller.wiring import open_runtime

        runtime: Any = open_runtime(settings)
    except ImportError:
        runtime = None
    app = create_app(settings, open_store(settings), runtime, open_catalog(settings))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-gateway"]:
        serve_gateway(int(sys.argv[2]))
    else:
        main(*[int(a) for a in sys.argv[1:3]])
