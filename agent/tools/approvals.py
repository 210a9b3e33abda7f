"""Pending approvals: a tool call waits here until the client answers (POST /v1/chat/approvals).

The request is registered *before* the approval_request event leaves the agent, so even the fastest
client's answer finds it. No answer within the timeout is a denial; so is an answer for a call that
is no longer waiting (it is reported as unknown, never applied to a later call).
"""

from __future__ import annotations

import asyncio
import contextlib


class ApprovalBoard:
    def __init__(self) -> None:
        self.pending: dict[str, asyncio.Future[bool]] = {}

    def register(self, call_id: str) -> None:
        self.pending[call_id] = asyncio.get_running_loop().create_future()

    def answer(self, call_id: str, approve: bool) -> bool:
        """False when nothing waits for this id (already answered, timed out, or never asked)."""
        future = self.pending.get(call_id)
        if future is None or future.done():
            return False
        future.set_result(approve)
        return True

    async def wait(self, call_id: str, timeout: float) -> bool | None:
        future = self.pending.get(call_id)
        if future is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None
        finally:
            with contextlib.suppress(Exception):
                future.cancel()
            if self.pending.get(call_id) is future:
                del self.pending[call_id]
