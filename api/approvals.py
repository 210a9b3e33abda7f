"""Tool approvals over the chat WebSockets: the client's `{"type": "approval", "id", "approve"}` frame
goes to the agent whose turn is waiting for it (POST <endpoint>/v1/chat/approvals).

Approval frames are taken out of the socket's reader as they arrive, not queued behind chat messages:
the turn that asked is still streaming, and the answer is what lets it go on. An answer while no turn
is running, or for a call the agent no longer waits for, gets an error frame (and changes nothing).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

import httpx

APPROVAL_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
TOOL_FRAME_FIELDS = {
    "tool_call": ("id", "name", "arguments"),
    "tool_result": ("id", "name", "output", "is_error"),
    "approval_request": ("id", "name", "arguments", "timeout_s"),
}


class Sink(Protocol):
    async def send_json(self, frame: dict[str, Any]) -> None: ...


def tool_frame(event: Any, timestamp: str) -> dict[str, Any] | None:
    """The client frame for an agent's tool event (only the contract's fields), or None if it is not one."""
    if not isinstance(event, dict):
        return None
    fields = TOOL_FRAME_FIELDS.get(str(event.get("type")))
    if fields is None:
        return None
    return {"type": event["type"], **{k: event.get(k) for k in fields}, "timestamp": timestamp}


def approval_answer(raw: str) -> dict[str, Any] | None:
    """The frame as {"id", "approve"} when it is an approval answer; None for anything else."""
    if '"approval"' not in raw:
        return None
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(frame, dict) or frame.get("type") != "approval":
        return None
    return {"id": frame.get("id"), "approve": frame.get("approve")}


class ApprovalRouter:
    """One per socket. relay() names the agent whose turn is streaming; answers go there."""

    def __init__(self, sink: Sink, http: httpx.AsyncClient | None, error_frame: Any) -> None:
        self.sink, self.http, self.error_frame = sink, http, error_frame
        self.target: tuple[str, str, dict[str, str]] | None = None  # (agent name, endpoint, auth headers)
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, answer: dict[str, Any]) -> None:
        task = asyncio.create_task(self._forward(answer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _forward(self, answer: dict[str, Any]) -> None:
        if not isinstance(answer.get("id"), str) or not isinstance(answer.get("approve"), bool):
            await self.sink.send_json(
                self.error_frame(
                    "bad frame", 'send {"type": "approval", "id": "<tool call id>", "approve": true|false}'
                )
            )
            return
        if self.target is None or self.http is None:
            await self.sink.send_json(
                self.error_frame("no approval pending", f"no tool call {answer['id']!r} is waiting")
            )
            return
        name, endpoint, headers = self.target
        try:
            resp = await self.http.post(
                endpoint.rstrip("/") + "/v1/chat/approvals", json=answer, headers=headers, timeout=APPROVAL_TIMEOUT
            )
        except httpx.HTTPError as err:
            await self.sink.send_json(
                self.error_frame("unreachable", f"agent {name} is unreachable ({type(err).__name__})")
            )
            return
        if resp.status_code != 200:
            try:
                detail = str(resp.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                detail = f"HTTP {resp.status_code}"
            await self.sink.send_json(self.error_frame("approval not applied", f"agent {name}: {detail}"))
