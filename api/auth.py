"""Authentication: one admin password, short-lived access tokens, one-time refresh tokens.

Why each piece is the way it is:
- The signing key is random (256 bits) and lives in a 0600 file under CLAWPEN_HOME, so tokens survive
  a restart but nobody without file access can mint one. Only HS256 is accepted: a token that names
  another algorithm (`none` included) is refused before its claims are read.
- Every token carries a `type` claim and each check demands the right one, so a 7-day refresh token
  can never be used as an access token, nor the reverse.
- Refresh tokens are one-time. A used one is written to an append-only ledger file (so the refusal
  survives a restart); presenting a used one again revokes its whole family, the standard answer to
  a stolen refresh token (RFC 9700 §4.14.2).
- There is no first-come admin takeover: the password is set by `clawpen admin set-password` or by
  CLAWPEN_ADMIN_PASSWORD on the first start, and is kept as an Argon2id hash in a 0600 file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from controller.store.fileio import atomic_write
from controller.users.audit import AuditLog
from controller.users.store import ADMIN_NAME, UserStore
from controller.users.tokens import ApiTokenStore

ALGORITHM = "HS256"
ISSUER = "clawpen"
ACCESS_TTL = 24 * 3600
REFRESH_TTL = 7 * 24 * 3600
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # Argon2 on a megabyte of "password" is a cheap way to burn our CPU.
ADMIN_PASSWORD_ENV = "CLAWPEN_ADMIN_PASSWORD"
VERIFIED_CACHE = 4096  # access tokens whose signature was checked, remembered (see TokenIssuer._decode)
VERIFY_SLOTS = 1  # concurrent Argon2 verifications (64 MiB each with argon2-cffi's defaults; ~0.1 s each)

log = logging.getLogger("clawpen.api.auth")


class AuthError(Exception):
    """A credential was refused; `status` is the HTTP answer (401 unless said otherwise)."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


class PasswordRuleError(ValueError):
    """A new password breaks the rules (length)."""


def auth_dir(home: Path) -> Path:
    return home / "auth"


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner, atomically (never a moment with looser mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, data, mode=0o600)


def load_signing_key(home: Path) -> bytes:
    """The HS256 key, created (32 random bytes) on first use."""
    path = auth_dir(home) / "jwt.key"
    if not path.exists():
        write_private(path, secrets.token_hex(32).encode())
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # someone loosened it; a signing key must stay private
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise AuthError(f"signing key {path} is shorter than 256 bits; delete it to make a new one", 500)
    return key


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordRuleError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PasswordRuleError(f"password must be at most {MAX_PASSWORD} characters")


class AdminPassword:
    """The admin's Argon2id hash in a 0600 file; no file means no admin yet."""

    def __init__(self, home: Path):
        self.path = auth_dir(home) / "admin.argon2"
        self._hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id (RFC 9106 low-memory profile)
        self._seen: tuple[int, int, str] | None = None  # (mtime_ns, size, fingerprint)

    def fingerprint(self) -> str:
        """A short digest of the stored hash, stamped into tokens: a new password ends old sessions.
        Cached by the file's mtime and size, so checking it on every request costs one stat()."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return ""
        if self._seen is None or self._seen[:2] != (st.st_mtime_ns, st.st_size):
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
            self._seen = (st.st_mtime_ns, st.st_size, digest)
        return self._seen[2]

    def exists(self) -> bool:
        return self.path.exists()

    def hash(self, password: str) -> str:
        check_password_rules(password)
        return self._hasher.hash(password)

    def store_hash(self, hashed: str) -> None:
        write_private(self.path, hashed.encode())

    def set(self, password: str) -> None:
        self.store_hash(self.hash(password))

    def verify(self, password: str) -> bool:
        if not self.exists() or len(password) > MAX_PASSWORD:
            return False
        stored = self.path.read_text().strip()
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if self._hasher.check_needs_rehash(stored):
            write_private(self.path, self._hasher.hash(password).encode())
        return True

    def bootstrap(self, env: Mapping[str, str]) -> bool:
        """On the first start, take the password from CLAWPEN_ADMIN_PASSWORD; True when it was set."""
        password = env.get(ADMIN_PASSWORD_ENV)
        if not password or self.exists():
            return False
        try:
            self.set(password)
        except PasswordRuleError as err:
            raise PasswordRuleError(f"{ADMIN_PASSWORD_ENV}: {err}") from None
        return True


class RefreshLedger:
    """Used refresh-token ids and revoked families, appended to a file so refusals survive restarts.

    Entries expire with the tokens they name; the file is compacted when it is loaded.
    """

    def __init__(self, home: Path, clock: Callable[[], float] = time.time):
        self.path = auth_dir(home) / "refresh-ledger.jsonl"
        self._clock = clock
        self._used: dict[str, float] = {}
        self._revoked: dict[str, float] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        now = self._clock()
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
                exp = float(entry["exp"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line after a crash; the entries before it still count
            if exp < now:
                continue
            if "jti" in entry:
                self._used[str(entry["jti"])] = exp
            elif "family" in entry:
                self._revoked[str(entry["family"])] = exp
        lines = [json.dumps({"jti": j, "exp": e}) for j, e in self._used.items()]
        lines += [json.dumps({"family": f, "exp": e}) for f, e in self._revoked.items()]
        write_private(self.path, ("\n".join(lines) + "\n").encode() if lines else b"")

    def _append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def is_used(self, jti: str) -> bool:
        return jti in self._used

    def is_revoked(self, family: str) -> bool:
        return family in self._revoked

    def mark_used(self, jti: str, exp: float) -> None:
        self._append({"jti": jti, "exp": exp})
        self._used[jti] = exp

    def revoke_family(self, family: str, exp: float) -> None:
        self._append({"family": family, "exp": exp})
        self._revoked[family] = exp


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class TokenIssuer:
    """Mints and checks tokens. All state changes are synchronous, so on one event loop a
    check-then-mark of a refresh token cannot interleave with another request's."""

    def __init__(
        self,
        key: bytes,
        ledger: RefreshLedger,
        *,
        access_ttl: int = ACCESS_TTL,
        refresh_ttl: int = REFRESH_TTL,
        clock: Callable[[], float] = time.time,
        epoch_of: Callable[[str], str | None] | None = None,
    ):
        self._key = key
        # The user's current epoch (None: no such user, or disabled); stamped into tokens as `pwv`, so a
        # new password, a disabled user or a removed one ends every token minted before.
        self._epoch_of = epoch_of or (lambda sub: "")
        self._ledger = ledger
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock
        # token -> its claims, once the signature and shape were checked: verifying an HS256 JWT
        # (header, HMAC, JSON, claim rules) was most of the auth cost of a request. Only that part
        # is remembered; expiry, the user's epoch and revocation are checked on every use.
        self._verified: dict[str, dict[str, Any]] = {}

    def _encode(self, kind: str, ttl: int, sub: str, extra: dict[str, Any]) -> str:
        now = int(self._clock())
        claims = {
            "iss": ISSUER,
            "sub": sub,
            "type": kind,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "pwv": self._epoch_of(sub) or "",
            **extra,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def issue(self, family: str | None = None, sub: str = "admin") -> TokenPair:
        """A new pair for `sub`; both tokens carry the family, so revoking it stops the access token too."""
        fam = family or uuid.uuid4().hex
        access = self._encode("access", self.access_ttl, sub, {"fam": fam})
        refresh = self._encode("refresh", self.refresh_ttl, sub, {"fam": fam})
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=self.access_ttl)

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is None or claims.get("type") != kind:
            claims = self._verify_signed(token, kind)
            if kind == "access":  # refresh tokens are one-time: nothing to gain
                if len(self._verified) >= VERIFIED_CACHE:
                    self._verified.clear()
                self._verified[token] = claims
        elif float(claims["exp"]) <= time.time():  # the clock jwt.decode judged expiry by
            self._verified.pop(token, None)
            raise AuthError("token expired")
        if claims.get("type") != kind:
            raise AuthError(f"a {claims.get('type')} token cannot be used as a {kind} token")
        epoch = self._epoch_of(str(claims["sub"]))
        if epoch is None:
            raise AuthError(f"user {claims['sub']!r} no longer exists or is disabled")
        if claims.get("pwv", "") != epoch:
            raise AuthError("the password changed (or sessions were ended) since this token was issued; log in again")
        return dict(claims)  # the caller's own: the cached claims stay as verified

    def _verify_signed(self, token: str, kind: str) -> dict[str, Any]:
        """The claims of a token whose algorithm, signature, issuer, expiry and required claims hold."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise AuthError(f"token algorithm must be {ALGORITHM}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "jti", "type", "sub"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is invalid") from None
        except jwt.InvalidTokenError as err:
            raise AuthError(f"invalid token: {err}") from None
        return claims

    @property
    def signing_key(self) -> bytes:
        return self._key

    def verify_access(self, token: str) -> dict[str, Any]:
        claims = self._decode(token, "access")
        if claims.get("fam") and self._ledger.is_revoked(str(claims["fam"])):
            raise AuthError("token revoked (its refresh token was reused); log in again")
        return claims

    def rotate(self, refresh_token: str) -> TokenPair:
        """Trade a refresh token for a new pair; the old one is dead from now on."""
        claims = self._decode(refresh_token, "refresh")
        family = str(claims.get("fam") or claims["jti"])
        if self._ledger.is_revoked(family):
            raise AuthError("refresh token revoked (its family was reused); log in again")
        if self._ledger.is_used(claims["jti"]):
            # Reuse means the token leaked or a client is confused; either way stop the whole chain.
            self._ledger.revoke_family(family, float(claims["exp"]))
            raise AuthError("refresh token already used; log in again")
        self._ledger.mark_used(claims["jti"], float(claims["exp"]))
        return self.issue(family, sub=str(claims["sub"]))


class LoginLimiter:
    """At most `max_failures` failed logins per client in a sliding `window`, then 429."""

    def __init__(self, max_failures: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int:
        """Seconds the client must wait, 0 if it may try now."""
        now = self._clock()
        times = self._failures.get(client)
        if not times:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return 0
        if len(times) < self.max_failures:
            return 0
        return max(1, int(times[0] + self.window - now + 0.999))

    def reserve(self, clients: list[str]) -> int:
        """Before verifying a password: 0 and the attempt counted against every key as a failure
        (forgiven on success), or the seconds to wait. Counting before the hash is what makes a
        burst of concurrent guesses meet the limit instead of all being verified."""
        wait = max((self.retry_after(c) for c in clients), default=0)
        if wait:
            return wait
        for client in clients:
            self.failed(client)
        return 0

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, deque()).append(self._clock())
        if len(self._failures) > 10_000:  # bound memory under a spray of spoofed-looking clients
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[oldest]

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


@dataclass
class AuthService:
    """Everything the routes and middleware need, built once per app from CLAWPEN_HOME."""

    admin: AdminPassword
    tokens: TokenIssuer
    limiter: LoginLimiter
    registration_enabled: bool
    users: UserStore
    api_tokens: ApiTokenStore
    audit: AuditLog
    verify_slots: int = VERIFY_SLOTS
    _slots: asyncio.Semaphore | None = None
    _hasher: PasswordHasher = field(default_factory=PasswordHasher)

    @classmethod
    def from_home(
        cls, home: Path, *, registration_enabled: bool = False, env: Mapping[str, str] | None = None
    ) -> AuthService:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        admin = AdminPassword(home)
        source = os.environ if env is None else env
        if admin.bootstrap(source):
            log.info("admin password set from %s (first start)", ADMIN_PASSWORD_ENV)
        elif source.get(ADMIN_PASSWORD_ENV):
            log.warning("%s ignored: a password is already set (use `clawpen admin set-password`)", ADMIN_PASSWORD_ENV)
        users = UserStore(home)

        def epoch_of(sub: str) -> str | None:
            if sub == ADMIN_NAME:
                return admin.fingerprint()
            user = users.get(sub)
            return user.epoch if user is not None and user.enabled else None

        tokens = TokenIssuer(load_signing_key(home), RefreshLedger(home), epoch_of=epoch_of)
        return cls(
            admin=admin,
            tokens=tokens,
            limiter=LoginLimiter(),
            registration_enabled=registration_enabled,
            users=users,
            api_tokens=ApiTokenStore(home),
            audit=AuditLog(home),
            verify_slots=int(source.get("CLAWPEN_LOGIN_CONCURRENCY", VERIFY_SLOTS)),
        )

    async def verify_password(self, username: str, password: str) -> bool:
        """Check a login; at most `verify_slots` Argon2 verifications run at once (each takes ~64 MiB),
        the rest wait their turn, so a burst cannot take the gateway's memory with it."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.verify_slots)
        async with self._slots:
            return await asyncio.to_thread(self._verify, username, password)

    def _verify(self, username: str, password: str) -> bool:
        if username == ADMIN_NAME:
            return self.admin.verify(password)
        user = self.users.get(username)
        stored = user.password_hash if user is not None and user.enabled else None
        if len(password) > MAX_PASSWORD:
            return False
        try:
            # Unknown users cost the same as known ones, so timing does not say which names exist.
            self._hasher.verify(stored or _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    def hash_password(self, password: str) -> str:
        check_password_rules(password)
        return self._hasher.hash(password)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(PasswordHasher().hash(secrets.token_hex(16)))
    return _DUMMY[0]
