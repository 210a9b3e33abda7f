"""One-time codes that hand a single sign-on's token pair to the dashboard without putting tokens in a URL.

Why: the OIDC callback ends in a browser redirect, and anything in a redirect's query string lands in
server logs, browser history and Referer headers. So the callback keeps the freshly minted pair here
under a random code and sends the browser to `/#sso=<code>`: a fragment never leaves the browser
(not sent to servers, not in Referer), the page clears it at once, and then trades it with
`POST /auth/oidc/exchange`. The code is also useless on its own:
- single use and short-lived (HANDOFF_SECONDS);
- bound to the browser that signed in: its hash is kept in that browser's signed, HttpOnly session
  cookie (scoped to /auth/oidc), and the exchange must present the same cookie.

Only hashes are kept as keys. The store is in memory: the gateway is one process (a restart between
callback and exchange costs the user one more click on "Sign in with SSO").
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from api.auth import TokenPair

HANDOFF_SECONDS = 60.0
MAX_PENDING = 1000  # a flood of half-finished sign-ins cannot grow memory without bound


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class _Pending:
    pair: TokenPair
    expires: float


class Handoffs:
    def __init__(self, ttl: float = HANDOFF_SECONDS) -> None:
        self.ttl = ttl
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def put(self, pair: TokenPair) -> tuple[str, str]:
        """Keep `pair`; returns (code for the browser, its hash for the session cookie)."""
        code = secrets.token_urlsafe(32)
        digest = code_hash(code)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._pending.items() if v.expires <= now]:
                del self._pending[key]
            while len(self._pending) >= MAX_PENDING:
                del self._pending[next(iter(self._pending))]
            self._pending[digest] = _Pending(pair, now + self.ttl)
        return code, digest

    def take(self, code: str, bound: str | None) -> TokenPair | None:
        """The pair for `code` once, if it is fresh and `bound` (from the session) is its hash."""
        digest = code_hash(code)
        if bound is None or not secrets.compare_digest(digest, bound):
            return None
        with self._lock:
            found = self._pending.pop(digest, None)
        if found is None or found.expires <= time.monotonic():
            return None
        return found.pair
