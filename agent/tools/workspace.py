"""The built-in workspace tools: read_file, write_file, list_files, run_command.

Confinement: every path is taken relative to the workspace (an absolute path must already point
inside it) and resolved with symlinks followed *before* use; anything that lands outside — through
`..`, an absolute path or a symlink — is refused with a clear tool error and never opened. That keeps
/run/secrets, /data (the sessions) and the program itself out of the file tools' reach. run_command is
different by nature: `sh -c` can do whatever the agent's user can inside its container, which is why
agents run isolated and why approval exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from pathlib import Path
from typing import Any

from agent.tools.base import Tool, ToolError, ToolResult, cap

MAX_LIST_ENTRIES = 1000
MAX_COMMAND_TIMEOUT = 3600.0


class Workspace:
    def __init__(self, root: Path, *, output_limit: int = 64 * 1024, command_timeout: float = 30.0):
        self.root = Path(os.path.realpath(root))
        self.output_limit = output_limit
        self.command_timeout = command_timeout

    # ---- confinement -----------------------------------------------------------------------------
    def resolve(self, raw: Any, *, what: str = "path") -> Path:
        if raw is None or raw == "":
            return self.root
        if not isinstance(raw, str) or "\0" in raw:
            raise ToolError(f"{what} must be a string")
        candidate = Path(raw)
        if candidate.is_absolute():
            if not _inside(Path(os.path.normpath(candidate)), self.root):
                raise ToolError(f"{what} {raw!r} is outside the workspace {self.root}; use a path inside it")
        else:
            candidate = self.root / candidate
        resolved = Path(os.path.realpath(candidate))
        if not _inside(resolved, self.root):
            how = "through a symlink" if _inside(Path(os.path.normpath(candidate)), self.root) else "through '..'"
            raise ToolError(f"{what} {raw!r} resolves outside the workspace ({how}); refused")
        return resolved

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path != self.root else "."

    # ---- tools -----------------------------------------------------------------------------------
    async def read_file(self, args: dict[str, Any]) -> ToolResult:
        path = self.resolve(args.get("path"))
        offset, limit = _int(args, "offset", 1, minimum=1), _int(args, "limit", 0, minimum=0)
        text = await asyncio.to_thread(_read_text, path)
        lines = text.splitlines(keepends=True)
        selected = lines[offset - 1 : (offset - 1 + limit) if limit else None]
        note = ""
        if offset > 1 or (limit and offset - 1 + limit < len(lines)):
            note = f"[lines {offset}-{offset - 1 + len(selected)} of {len(lines)}]\n"
        return ToolResult(note + cap("".join(selected), self.output_limit))

    async def write_file(self, args: dict[str, Any]) -> ToolResult:
        content = args.get("content")
        if not isinstance(content, str):
            raise ToolError("content must be a string")
        path = self.resolve(args.get("path"))
        if path == self.root:
            raise ToolError("path is required")
        size = await asyncio.to_thread(_write_text, path, content)
        return ToolResult(f"wrote {size} bytes to {self.rel(path)}")

    async def list_files(self, args: dict[str, Any]) -> ToolResult:
        path = self.resolve(args.get("path"))
        entries = await asyncio.to_thread(_list, path)
        shown = entries[:MAX_LIST_ENTRIES]
        more = f"\n[{len(entries) - len(shown)} more entries not shown]" if len(entries) > len(shown) else ""
        body = "\n".join(shown) if shown else "(empty)"
        return ToolResult(cap(f"{self.rel(path)}:\n{body}{more}", self.output_limit))

    async def run_command(self, args: dict[str, Any]) -> ToolResult:
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("command must be a non-empty string")
        timeout = args.get("timeout_s", self.command_timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ToolError("timeout_s must be a positive number of seconds")
        timeout = min(float(timeout), MAX_COMMAND_TIMEOUT)
        env = {**os.environ, "HOME": str(self.root), "PWD": str(self.root)}
        try:
            proc = await asyncio.create_subprocess_exec(
                "sh",
                "-c",
                command,
                cwd=self.root,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills everything it started
            )
        except OSError as err:
            raise ToolError(f"cannot start sh: {err.strerror or err}") from None
        buffer = bytearray()
        total = 0

        async def drain() -> None:
            nonlocal total
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                total += len(chunk)
                if len(buffer) < self.output_limit:
                    buffer.extend(chunk[: self.output_limit - len(buffer)])

        timed_out = False
        try:
            async with asyncio.timeout(timeout):
                await drain()
                await proc.wait()
        except TimeoutError:
            timed_out = True
        finally:
            _kill_group(proc.pid)  # also on cancellation: nothing it started outlives the call
            with contextlib.suppress(ProcessLookupError):
                if proc.returncode is None:
                    await asyncio.wait_for(proc.wait(), 5)
            await _reap_orphans(proc.pid)
        text = buffer.decode("utf-8", "replace")
        if total > len(buffer):
            text += f"\n[output cut: {total - len(buffer)} more bytes not shown; limit {self.output_limit} bytes]"
        if timed_out:
            return ToolResult(
                f"timed out after {timeout:g}s: killed the command and its process group\n{text}", is_error=True
            )
        code = proc.returncode if proc.returncode is not None else -1
        return ToolResult(f"exit code: {code}\n{text}", is_error=code != 0)

    def tools(self, names: tuple[str, ...]) -> list[Tool]:
        specs = {
            "read_file": Tool(
                "read_file",
                "Read a text file in the workspace. Optional 1-based line offset and a line limit.",
                _schema(
                    {
                        "path": _str("file path, relative to the workspace"),
                        "offset": _num("first line to return (1-based)"),
                        "limit": _num("how many lines to return"),
                    },
                    ["path"],
                ),
                self.read_file,
            ),
            "write_file": Tool(
                "write_file",
                "Create or overwrite a text file in the workspace (parent directories are created).",
                _schema(
                    {"path": _str("file path, relative to the workspace"), "content": _str("the whole file")},
                    ["path", "content"],
                ),
                self.write_file,
            ),
            "list_files": Tool(
                "list_files",
                "List a directory in the workspace (default: the workspace root). Directories end in '/'.",
                _schema({"path": _str("directory, relative to the workspace")}, []),
                self.list_files,
            ),
            "run_command": Tool(
                "run_command",
                f"Run a shell command (sh -c) in the workspace. Returns the exit code and the combined "
                f"output (at most {self.output_limit} bytes). Default timeout {self.command_timeout:g}s.",
                _schema(
                    {
                        "command": _str("the shell command"),
                        "timeout_s": {"type": "number", "description": "timeout in seconds"},
                    },
                    ["command"],
                ),
                self.run_command,
            ),
        }
        return [specs[name] for name in names if name in specs]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _int(args: dict[str, Any], key: str, default: int, *, minimum: int) -> int:
    value = args.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) < minimum:
        raise ToolError(f"{key} must be an integer >= {minimum}")
    return int(value)


def _read_text(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ToolError(f"no such file: {path.name}") from None
    except OSError as err:
        raise ToolError(f"cannot open {path.name}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if stat.S_ISDIR(os.fstat(handle.fileno()).st_mode):
            raise ToolError(f"{path.name} is a directory; use list_files")
        return handle.read(16 * 1024 * 1024).decode("utf-8", "replace")


def _write_text(path: Path, content: str) -> int:
    data = content.encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except IsADirectoryError:
        raise ToolError(f"{path.name} is a directory") from None
    except OSError as err:
        raise ToolError(f"cannot write {path.name}: {err.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return len(data)


def _list(path: Path) -> list[str]:
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        raise ToolError(f"no such directory: {path.name}") from None
    except NotADirectoryError:
        raise ToolError(f"{path.name} is a file; use read_file") from None
    except OSError as err:
        raise ToolError(f"cannot list {path.name}: {err.strerror}") from None
    out = []
    for entry in entries:
        if entry.is_symlink():
            out.append(f"{entry.name} -> {os.readlink(entry.path)}")
        elif entry.is_dir():
            out.append(entry.name + "/")
        else:
            with contextlib.suppress(OSError):
                out.append(f"{entry.name}  ({entry.stat().st_size} bytes)")
    return out


async def _reap_orphans(group: int) -> None:
    """Collect the killed group's orphans that were re-parented to us.

    In its container the agent is PID 1: a killed command's background children become its children,
    and nothing else would ever wait() for them, so they would stay zombies (and count against the
    container's pids limit). Only processes of this command's group whose parent is us are touched,
    so asyncio's own child watching is never disturbed."""
    me = os.getpid()
    for _ in range(20):
        left = 0
        for pid, ppid, pgrp in _processes():
            if pgrp != group or ppid != me:
                continue
            left += 1
            with contextlib.suppress(ChildProcessError, OSError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    left -= 1
        if not left:
            return
        await asyncio.sleep(0.05)


def _processes() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgrp) of every process we can see in /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat_line.rsplit(")", 1)[-1].split()
        with contextlib.suppress(IndexError, ValueError):
            out.append((int(entry), int(fields[1]), int(fields[2])))
    return out


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _str(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


def _num(description: str) -> dict[str, str]:
    return {"type": "integer", "description": description}
