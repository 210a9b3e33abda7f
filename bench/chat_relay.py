"""Chat relay benchmark: per-chunk latency through the gateway's WebSocket vs calling the agent directly.

Setup, all on this host: the fake model server streams chunks whose text is the time.perf_counter()
at which each left it (CLOCK_MONOTONIC, shared by every process on the machine); the agent program
runs as its own process (`python -m agent`) against it. A client reads the same streamed reply
(a) straight from the agent's /v1/chat/completions SSE and (b) through the gateway's
/api/agents/{name}/chat WebSocket, and records arrival time minus send time for every chunk. The
relay's added latency per chunk is (b) minus (a). Run: `python bench/chat_relay.py [rounds] [chunks]`.
"""

from __future__ import annotations

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

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.model_server import FakeModelServer, Script  # noqa: E402

CHUNK_DELAY = 0.005  # between chunks at the model, like a fast local model (200 tokens/s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
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


def measure(rounds: int, one_round: Callable[[int], list[float]]) -> list[float]:
    one_round(-1)  # warm-up: connections, imports, first session file
    out: list[float] = []
    for i in range(rounds):
        out += one_round(i)
    return out


def main(rounds: int = 20, chunks: int = 50) -> None:
    model = FakeModelServer(host="127.0.0.1").start()
    model.default = Script(timestamps=True, chunks=chunks, chunk_delay=CHUNK_DELAY)
    with tempfile.TemporaryDirectory(prefix="clawpen-bench-") as tmp:
        agent_url, agent = start_agent(model, Path(tmp) / "data")
        try:
            print(f"{rounds} rounds x {chunks} chunks, {CHUNK_DELAY * 1000:.0f} ms apart at the model")
            direct = summary("direct", measure(rounds, lambda i: direct_round(agent_url, f"d{i}")))
            relay_fn = relay_round_factory(agent_url, Path(tmp))
            if relay_fn is None:
                return
            with relay_fn as one_round:
                relayed = summary("relay", measure(rounds, one_round))
            print(
                f"relay adds {relayed['median_ms'] - direct['median_ms']:.3f} ms per chunk (median), "
                f"{relayed['p95_ms'] - direct['p95_ms']:.3f} ms (p95)"
            )
        finally:
            agent.terminate()
            agent.wait(10)
            model.stop()


def relay_round_factory(agent_url: str, tmp: Path):  # type: ignore[no-untyped-def]
    """Set up the gateway relay, or say why it cannot be measured (returns None)."""
    try:
        from bench._relay_gateway import GatewayRelay
    except ImportError as err:
        print(f"relay: not measured ({err})")
        return None
    return GatewayRelay(agent_url, tmp)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
