"""Issue 10, item 4: a burst of concurrent bad logins meets the rate limit before Argon2 and memory stays flat.

Before the fix the failure counter moved only after each Argon2 verification (64 MiB each), so 40
concurrent guesses were all verified (0 x 429) and the gateway grew by gigabytes. The gateway runs in
its own process here so its peak resident memory (VmHWM) can be read from /proc.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.api.gateway_process", str(tmp_path / "home"), str(port_file)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    for _ in range(300):
        if port_file.exists() and port_file.read_text():
            break
        if proc.poll() is not None:
            raise AssertionError("the gateway process died")
        time.sleep(0.1)
    url = f"http://127.0.0.1:{port_file.read_text()}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/health")
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield proc, url
    proc.terminate()
    proc.wait(10)


async def _burst(url: str, n: int) -> list[int]:
    async with httpx.AsyncClient(timeout=120) as client:
        answers = await asyncio.gather(
            *(client.post(f"{url}/auth/login", json={"password": f"wrong guess number {i}"}) for i in range(n))
        )
    return [a.status_code for a in answers]


def test_forty_concurrent_bad_logins_get_429s_and_memory_stays_flat(
    gateway: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url = gateway
    # One good login first: Argon2's first use (and the interpreter's warm-up) is not the burst's fault.
    assert httpx.post(f"{url}/auth/login", json={"password": "correct horse battery staple"}).status_code == 200
    before = _kib(proc.pid, "VmRSS")
    codes = asyncio.run(_burst(url, 40))
    peak = _kib(proc.pid, "VmHWM")
    assert codes.count(429) >= 30, codes  # the per-address limit (5) is reserved before hashing
    assert set(codes) <= {401, 429}, codes
    growth_mb = (peak - before) / 1024
    print(f"login burst: {codes.count(429)} x 429, peak RSS growth {growth_mb:.0f} MB")
    assert growth_mb < 150, f"peak resident memory grew {growth_mb:.0f} MB during the burst"
