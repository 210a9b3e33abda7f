"""Benchmark: the dashboard in Chromium — first load (bytes, ms) and status change → page shows it.

A gateway (its own process, file store with --agents agents) and Debian's chromium via Playwright.
First load: a fresh browser context (empty cache, no service worker), from navigation to the login
form, then from "Log in" to the fleet table holding every agent (the watch stream's snapshot).
Bytes are what the network carried (Resource Timing transferSize), shell and data apart.
Status → page: a "controller" (a FileStore in this process) writes an agent's status; a
MutationObserver in the page stamps the moment its row changes. Both clocks are this machine's.
The baseline in the same run: the same page reloaded with a warm cache (the service worker's shell).

    python bench/dashboard_load.py [--agents 200] [--changes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gateway import PASSWORD, _settings, seed, serve_gateway  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BYTES = """() => {
  const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
  const shell = entries.filter((e) => !new URL(e.name).pathname.startsWith("/api") && !e.name.includes("/auth/"));
  const sum = (list) => list.reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0);
  return {shell: sum(shell), all: sum(entries), files: shell.length};
}"""
OBSERVE = """(name) => {
  window.__changes = [];
  const row = () => document.querySelector(`tr[data-name="${name}"]`);
  new MutationObserver(() => {
    const r = row();
    const text = r ? r.textContent : "";
    if (text !== window.__last) { window.__last = text; window.__changes.push({t: Date.now(), text}); }
  }).observe(document.querySelector("tbody"), {subtree: true, childList: true, characterData: true});
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="clawpen-bench-") as tmp:
        home = Path(tmp)
        asyncio.run(seed(home, args.agents))
        ctx = mp.get_context("spawn")
        ports: Any = ctx.Queue()
        gateway = ctx.Process(target=serve_gateway, args=(str(home), ports), daemon=True)
        gateway.start()
        url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/health").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(base_url=url)
                page = context.new_page()
                page.goto("about:blank")  # the browser's own start-up is not the dashboard's
                page.goto("/")
                page.get_by_label("Password").wait_for()
                shell_ms = page.evaluate("performance.now()")  # since navigation start
                shell = page.evaluate(BYTES)
                page.get_by_label("Password").fill(PASSWORD)
                started = time.perf_counter()
                page.get_by_role("button", name="Log in").click()
                page.get_by_role("heading", name="Fleet").wait_for()
                login_ms = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                page.wait_for_function(
                    "n => document.querySelectorAll('tbody tr[data-name]').length === n", arg=args.agents
                )
                fleet_ms = (time.perf_counter() - started) * 1000
                token = page.evaluate("JSON.parse(sessionStorage.getItem('clawpen.session')).access")
                snapshot = _snapshot_bytes(url, token)
                print(
                    f"first load, cold cache: login page ready {shell_ms:.0f} ms after navigation start, "
                    f"{shell['shell'] / 1024:.1f} KiB in {shell['files']} files (no build step, uncompressed)"
                )
                print(
                    f"log in: {login_ms:.0f} ms (argon2 password check); then fleet table with {args.agents} "
                    f"agents in {fleet_ms:.0f} ms (watch snapshot {snapshot / 1024:.1f} KiB)"
                )
                page.wait_for_timeout(500)  # the service worker installs and caches the shell
                started = time.perf_counter()
                page.reload()
                page.wait_for_function(
                    "n => document.querySelectorAll('tbody tr[data-name]').length === n", arg=args.agents
                )
                print(f"reload, warm cache (baseline): fleet table in {(time.perf_counter() - started) * 1000:.0f} ms")

                name = "agent-007"
                page.evaluate(OBSERVE, name)
                lags = _changes(home, page, name, args.changes)
                lags.sort()
                print(
                    f"status written → row shows it, {len(lags)} changes: p50 {statistics.median(lags):.0f} ms, "
                    f"p95 {lags[int(len(lags) * 0.95) - 1]:.0f} ms, max {lags[-1]:.0f} ms "
                    "(polling once a second would average 500 ms plus a full list)"
                )
                browser.close()
        finally:
            gateway.terminate()
            gateway.join(5)
    return 0


def _snapshot_bytes(url: str, token: str) -> int:
    size = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{url}/api/watch", headers=headers, timeout=30) as answer:
        for line in answer.iter_lines():
            if line.startswith("event: SYNCED"):
                return size
            size += len(line) + 1
    return size


def _changes(home: Path, page: Any, name: str, count: int) -> list[float]:
    from controller.resources import Agent, AgentStatus, Condition, Phase
    from controller.wiring import open_store

    # The writes run on a loop of their own in another thread (Playwright's sync API owns this one).
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    store = open_store(_settings(home))
    lags: list[float] = []
    try:
        for i in range(count):
            phase = Phase.FAILED if i % 2 == 0 else Phase.RUNNING
            reason = f"Bench{i}"
            status = AgentStatus(phase=phase, conditions=[Condition(type="Ready", status="False", reason=reason)])
            written = time.time() * 1000  # before the write: the lag includes writing the status
            run(store.update_status(Agent, name, status))
            for _ in range(1000):
                changes = page.evaluate("window.__changes")
                hit = next((c for c in changes if reason in c["text"]), None)
                if hit:
                    lags.append(hit["t"] - written)
                    break
                page.wait_for_timeout(5)
            page.wait_for_timeout(200)
    finally:
        run(store.close())
        loop.call_soon_threadsafe(loop.stop)
    return lags


if __name__ == "__main__":
    raise SystemExit(main())
