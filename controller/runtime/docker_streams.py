"""Blocking Docker streams (logs, events) as async iterators that end cleanly when the consumer leaves.

The SDK reads streams with blocking sockets; each stream gets a thread that feeds an asyncio queue.
Closing the async iterator must end that thread at once — a follow-mode log or the event stream
never ends on its own — so it interrupts the read with a socket shutdown (closing the buffered
response from another thread would deadlock on its lock; see `threaded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")
StreamName = Literal["stdout", "stderr"]
_END = object()


async def threaded(
    make_iter: Callable[[], Iterator[T]],
    interrupt: Callable[[], None],
    map_error: Callable[[Exception], Exception] = lambda err: err,
) -> AsyncIterator[T]:
    """Drive a blocking iterator in a thread; closing this async iterator ends the thread.

    `interrupt` must unblock a read in progress without waiting for it (a socket shutdown, not a
    close). Errors of the source are raised to the consumer through `map_error`.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
    stopped = threading.Event()

    def hand_over(item: Any) -> bool:
        """Queue an item (waiting while the queue is full); False once the consumer is gone."""
        while not stopped.is_set():
            try:
                asyncio.run_coroutine_threadsafe(queue.put(item), loop).result(timeout=1)
                return True
            except TimeoutError:
                continue
            except RuntimeError:  # the loop is closed
                return False
        return False

    def pump() -> None:
        source = make_iter()
        try:
            for item in source:
                if not hand_over(item):
                    return
            hand_over(_END)
        except Exception as err:  # noqa: BLE001 - handed to the consumer, or dropped after close
            hand_over(map_error(err))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pump, name="clawpen-docker-stream", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stopped.set()
        try:
            interrupt()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            pass


def raw_socket(sock: Any) -> Any:
    """The real socket under what the SDK hands out.

    On a unix socket (the default engine address) `_get_raw_response_socket` returns the
    `socket.SocketIO` wrapper, which has no `shutdown`: calling it raised AttributeError, the
    interrupt was swallowed, and every closed follow stream kept its thread and connection.
    """
    inner = getattr(sock, "_sock", None)  # socket.SocketIO, and the TLS wrapper on https://
    return inner if inner is not None and hasattr(inner, "shutdown") else sock


def shutdown_socket(sock: Any) -> None:
    try:
        raw_socket(sock).shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


@dataclass
class LogStream:
    """One `GET /containers/{id}/logs` response, read as (stream, line) pairs.

    Docker multiplexes stdout and stderr: each frame is an 8-byte header (stream id, 3 pad bytes,
    big-endian length) and its data. The SDK's own reader drops the stream id; we keep it.
    """

    response: Any
    sock: Any

    @classmethod
    def open(cls, api: Any, container_id: str, *, tail: int | None, follow: bool) -> LogStream:
        params = {
            "stdout": 1,
            "stderr": 1,
            "timestamps": 1,
            "follow": int(follow),
            "tail": "all" if tail is None else tail,
        }
        response = api._get(api._url("/containers/{0}/logs", container_id), params=params, stream=True)
        api._raise_for_status(response)
        sock = api._get_raw_response_socket(response)
        api._disable_socket_timeout(sock)
        return cls(response, sock)

    def interrupt(self) -> None:
        shutdown_socket(self.sock)

    def frames(self) -> Generator[tuple[int, bytes], None, None]:
        read = self.response.raw.read
        try:
            while True:
                header = read(8)
                if len(header) < 8:
                    return
                stream_id, length = struct.unpack(">BxxxL", header)
                data = read(length) if length else b""
                if length and not data:
                    return
                yield stream_id, data
        except (OSError, ValueError, AttributeError):
            return  # the socket was shut down under us: the consumer went away
        finally:
            self.response.close()

    def lines(self) -> Iterator[tuple[StreamName, str]]:
        """Whole lines per stream: a frame may end mid-line, and the two streams interleave."""
        pending: dict[int, bytes] = {1: b"", 2: b""}
        with contextlib.closing(self.frames()) as frames:  # closing us closes the response now
            for stream_id, data in frames:
                key = 2 if stream_id == 2 else 1
                *complete, pending[key] = (pending[key] + data).split(b"\n")
                for raw in complete:
                    yield _name(key), raw.decode(errors="replace")
        for key, rest in pending.items():
            if rest:
                yield _name(key), rest.decode(errors="replace")


def _name(stream_id: int) -> StreamName:
    return "stderr" if stream_id == 2 else "stdout"
