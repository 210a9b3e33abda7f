"""Conversation history per session, as append-only JSON lines under <data>/sessions/<id>.jsonl.

Records are the conversation in the agent's neutral form: user and assistant text, and, when the agent
uses tools, the assistant's tool calls and each tool's result (role "tool"), so the next turn and a
replaced container see the whole exchange.

Why this shape: /data is the agent's named volume, so the history outlives the container (a memory
change replaces the container; the chat goes on). Appending one fsynced line per message means a crash
can at worst leave a torn last line, which reading skips; earlier records are never rewritten.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("agent.sessions")

SESSION_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
ROLES = frozenset({"user", "assistant", "system", "tool"})
# Besides role and content, the fields of the tool exchange (see agent/tools/wire.py) are kept.
TOOL_FIELDS = ("tool_calls", "tool_call_id", "name", "is_error")


def trim_history(history: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    """The newest messages that fit in `max_chars`, starting at a user turn.

    The file keeps everything; only what is sent is bounded, so a long conversation degrades into
    "remembers the recent part" instead of failing once it outgrows the model's context window.
    """
    kept: list[dict[str, Any]] = []
    used = 0
    for message in reversed(history):
        used += len(message["content"]) + (len(str(message["tool_calls"])) if message.get("tool_calls") else 0)
        if used > max_chars:
            break
        kept.append(message)
    kept.reverse()
    while kept and kept[0]["role"] != "user":
        kept.pop(0)
    return kept


class InvalidSession(ValueError):
    """A session id that could escape the sessions directory or is otherwise unusable."""


def validate_session_id(session: str) -> str:
    if not isinstance(session, str) or not SESSION_ID.fullmatch(session) or session in (".", ".."):
        raise InvalidSession(f"invalid session id {str(session)[:40]!r}: use 1-128 characters from A-Z a-z 0-9 _ . -")
    return session


class SessionStore:
    """Reads and appends session histories. One asyncio lock per session serialises turns."""

    def __init__(self, data_dir: Path):
        self.dir = Path(data_dir) / "sessions"
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, session: str) -> Path:
        return self.dir / f"{validate_session_id(session)}.jsonl"

    def lock(self, session: str) -> asyncio.Lock:
        return self._locks.setdefault(validate_session_id(session), asyncio.Lock())

    def read(self, session: str) -> list[dict[str, Any]]:
        """The stored messages in order; unreadable lines (a torn tail after a crash) are skipped."""
        try:
            raw = self.path(session).read_bytes()
        except FileNotFoundError:
            return []
        messages: list[dict[str, Any]] = []
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("session %s: skipping unreadable line %d", session, number)
                continue
            if isinstance(record, dict) and record.get("role") in ROLES and isinstance(record.get("content"), str):
                message = {"role": record["role"], "content": record["content"]}
                message.update({k: record[k] for k in TOOL_FIELDS if k in record})
                if message["role"] == "tool" and not isinstance(message.get("tool_call_id"), str):
                    continue
                messages.append(message)
        return messages

    def append(self, session: str, records: list[dict[str, Any]]) -> None:
        """Append records durably: each line is written and fsynced before the next."""
        path = self.path(session)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size:
                # A torn last line has no newline; start on a fresh line so the new record stays readable.
                with open(path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        os.write(fd, b"\n")
            for record in records:
                os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
                os.fsync(fd)
        finally:
            os.close(fd)
