"""Tool loop benchmark: what one tool step costs through the agent vs calling the tool in process.

Setup, all on this host: the agent program in process (uvicorn on 127.0.0.1, tools on, a temporary
workspace) against the fake model server. A turn in which the model asks for `steps` tool calls one
after another (read_file of a small file, then a text answer) is timed end to end from the client,
and so is a turn without tools (the baseline: one model round trip, the SSE stream, the session
write). Per tool step: (tools turn − plain turn) / steps — one more model request with the tool
result, the loop, the tool and its events — next to the same read_file called in process (the
Workspace method, no HTTP, no model). Run: `python bench/tool_loop.py [rounds] [steps]`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.app import create_app  # noqa: E402
from agent.config import AgentConfig  # noqa: E402
from agent.tools.workspace import Workspace  # noqa: E402
from tests.fakes.model_server import FakeModelServer, Script, calls  # noqa: E402
from tests.fakes.server_thread import ServerThread  # noqa: E402

TOKEN = "bench-token"


def turn(client: httpx.Client, url: str) -> float:
    body = {"messages": [{"role": "user", "content": "go"}], "stream": True}
    started = time.perf_counter()
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line == "data: [DONE]":
                break
            if line.startswith("data: ") and '"error"' in line:
                raise SystemExit(f"turn failed: {line}")
    return time.perf_counter() - started


def in_process(workspace: Path, n: int) -> float:
    ws = Workspace(workspace)

    async def run() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await ws.read_file({"path": "data.txt"})
        return (time.perf_counter() - started) / n

    return asyncio.run(run())


def main(rounds: int = 20, steps: int = 5) -> None:
    fake = FakeModelServer(host="127.0.0.1").start()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "ws").mkdir()
        (base / "ws" / "data.txt").write_text("x" * 1000)
        (base / "secrets").mkdir()
        (base / "secrets" / "clawpen-agent-token").write_text(TOKEN)
        env = {
            "CLAWPEN_AGENT_NAME": "bench",
            "CLAWPEN_BASE_URL": fake.url,
            "CLAWPEN_MODEL": "fake",
            "CLAWPEN_DATA_DIR": str(base / "data"),
            "CLAWPEN_SECRETS_DIR": str(base / "secrets"),
            "CLAWPEN_WORKSPACE": str(base / "ws"),
            "CLAWPEN_TOOLS": json.dumps({"builtin": ["read_file"], "maxSteps": steps + 1}),
        }
        server = ServerThread(create_app(AgentConfig.from_env(env))).start()
        client = httpx.Client(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
        try:
            plain, tooled = [], []
            for _ in range(3):  # warm up both paths
                fake.push(Script(reply="warm"))
                turn(client, server.url)
            for _ in range(rounds):
                fake.push(Script(reply="done"))
                plain.append(turn(client, server.url))
                fake.push(*[calls(("read_file", {"path": "data.txt"}))] * steps, Script(reply="done"))
                tooled.append(turn(client, server.url))
            direct = in_process(base / "ws", 2000)
        finally:
            client.close()
            server.stop()
            fake.stop()
    p, t = statistics.median(plain), statistics.median(tooled)
    per_step = (t - p) / steps
    print(f"{rounds} rounds, {steps} tool steps per turn (read_file of 1 kB), agent in process, fake model local")
    print(f"  turn without tools (baseline)     median {p * 1000:8.2f} ms")
    print(f"  turn with {steps} tool steps          median {t * 1000:8.2f} ms")
    print(f"  per tool step through the loop           {per_step * 1000:8.2f} ms  (a model round trip included)")
    print(f"  read_file called in process              {direct * 1e6:8.1f} µs")
    print(f"  overhead per step vs in process          {(per_step - direct) * 1000:8.2f} ms")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:3]])
