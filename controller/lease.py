"""One controller per CLAWPEN_HOME: an exclusive lease held for the controller's lifetime.

Two controllers on one home fight: each reconciles every agent, and one with a broken DOCKER_HOST
flipped every agent to RuntimeUnavailable while the other kept starting them. Like Kubernetes leader
election, one holder acts and the others wait or leave. The lease is an flock on `controller.lock`
under the home: the kernel drops it when the holder exits, however it exits (even SIGKILL), so there
is never a stale lease to expire. The holder writes its pid into the file so a refusal can name it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from controller.settings import Settings

LEASE_FILE = "controller.lock"


class LeaseHeld(Exception):
    """Another live process holds the controller lease of this home."""

    def __init__(self, path: Path, holder: str):
        self.path = path
        self.holder = holder
        super().__init__(
            f"another controller (pid {holder}) already runs on {path.parent}; stop it first, "
            "or start this one with --standby to take over when it stops"
        )


class ControllerLease:
    def __init__(self, home: Path):
        self.path = home / LEASE_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> str:
        """The pid the current holder wrote (or "unknown" while it is still writing it)."""
        try:
            return self.path.read_text().split()[0]
        except (OSError, IndexError):
            return "unknown"

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def acquire(self) -> None:
        """Take the lease now, or raise LeaseHeld naming the holder's pid."""
        if not self.try_acquire():
            raise LeaseHeld(self.path, self.holder())

    async def wait(self, poll: float = 1.0) -> None:
        """Standby: return once this process holds the lease."""
        while not self.try_acquire():
            await asyncio.sleep(poll)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None


@contextlib.asynccontextmanager
async def hold_lease(settings: Settings, *, enabled: bool = True, standby: bool = False) -> AsyncIterator[None]:
    """Hold this home's controller lease for the block (file store only: in a cluster the store is
    the API server and kopf's own peering keeps operators apart)."""
    if not enabled or settings.store != "files":
        yield
        return
    lease = ControllerLease(settings.ensure_home())
    if standby and not lease.try_acquire():
        logging.getLogger("clawpen").info("standby: controller pid %s holds %s; waiting", lease.holder(), lease.path)
        await lease.wait()
        logging.getLogger("clawpen").info("took over the controller lease of %s", settings.home)
    lease.acquire()
    try:
        yield
    finally:
        lease.release()
