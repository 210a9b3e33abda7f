"""The auth building blocks on their own: the refresh ledger's file and the login limiter's window."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from api.auth import AuthError, LoginLimiter, RefreshLedger, TokenIssuer


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


def test_a_remembered_token_check_still_sees_revocation_expiry_and_a_new_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Access tokens are verified (signature, claims) once and remembered; what can end a token
    is checked on every use all the same."""
    epochs = {"admin": "one"}
    ledger = RefreshLedger(tmp_path)
    issuer = TokenIssuer(b"k" * 32, ledger, access_ttl=60, epoch_of=epochs.get)
    pair = issuer.issue()
    first = issuer.verify_access(pair.access_token)
    first["sub"] = "mallory"  # a caller changing its copy changes nothing remembered
    assert issuer.verify_access(pair.access_token)["sub"] == "admin"
    with pytest.raises(AuthError, match="access token"):
        issuer.rotate(pair.access_token)  # remembered as an access token, still no refresh token

    issuer.rotate(pair.refresh_token)  # refresh token used once...
    with pytest.raises(AuthError, match="already used"):
        issuer.rotate(pair.refresh_token)  # ...and again: its whole family is revoked
    with pytest.raises(AuthError, match="revoked"):
        issuer.verify_access(pair.access_token)

    other = issuer.issue()
    assert issuer.verify_access(other.access_token)["sub"] == "admin"
    epochs["admin"] = "two"  # a new password
    with pytest.raises(AuthError, match="password changed"):
        issuer.verify_access(other.access_token)
    epochs["admin"] = "one"
    assert issuer.verify_access(other.access_token)["sub"] == "admin"
    del epochs["admin"]  # the user is gone
    with pytest.raises(AuthError, match="no longer exists"):
        issuer.verify_access(other.access_token)
    epochs["admin"] = "one"

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)  # past the token's expiry
    with pytest.raises(AuthError, match="expired"):
        issuer.verify_access(other.access_token)
