"""The auth building blocks on their own: the refresh ledger's file and the login limiter's window."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from api.auth import LoginLimiter, RefreshLedger


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ledger_survives_reload_drops_expired_entries_and_a_torn_line(tmp_path: Path) -> None:
    clock = Clock()
    ledger = RefreshLedger(tmp_path, clock=clock)
    ledger.mark_used("live", exp=5000)
    ledger.mark_used("old", exp=1500)
    ledger.revoke_family("fam", exp=5000)
    with ledger.path.open("a") as f:
        f.write('{"jti": "torn", "ex')  # a crash mid-append
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    clock.now = 2000
    reloaded = RefreshLedger(tmp_path, clock=clock)
    assert reloaded.is_used("live") and reloaded.is_revoked("fam")
    assert not reloaded.is_used("old") and not reloaded.is_used("torn")
    kept = [json.loads(line) for line in reloaded.path.read_text().splitlines()]
    assert {e.get("jti") or e.get("family") for e in kept} == {"live", "fam"}  # compacted


def test_limiter_window_slides_and_clients_are_separate() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=5, window=60, clock=clock)
    for _ in range(5):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
        clock.now += 1
    assert limiter.retry_after("a") == 55  # the first failure (t=1000) leaves the window at t=1060
    assert limiter.retry_after("b") == 0
    clock.now += 55
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0
