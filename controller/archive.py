"""Tar plumbing for snapshots and exports: streaming, hashing, and refusing what is unsafe.

A snapshot's data is one tar whose top-level entries are exactly `data/` and `workspace/` (what
Docker's archive API returns for /data and /workspace, concatenated). Everything here streams, so
a multi-gigabyte volume never sits in memory, and everything that reads an archive checks it end to
end *before* anything is written into an agent's volumes: a truncated or tampered file is refused
with a clear message and the agent keeps its data.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

ROOTS = ("data", "workspace")
CHUNK = 1024 * 1024
# A pax extended header or GNU long name holds a path, a link target and a few attributes: kilobytes.
# tarfile reads one whole into memory, so a 200 MiB header cost 739 MiB before this bound.
MAX_HEADER_BYTES = 1024 * 1024
_META_TYPES = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)

Progress = Callable[[str, int, int | None], None]  # (phase, bytes done, total or None)


class ArchiveError(Exception):
    """An archive that is corrupt, truncated, too big, or holds something a snapshot never does."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def no_progress(phase: str, done: int, total: int | None) -> None:
    return None


class BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses a metadata header (pax, GNU long name) bigger than MAX_HEADER_BYTES
    before tarfile reads it into memory."""

    def _proc_member(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in _META_TYPES and self.size > MAX_HEADER_BYTES:
            raise ArchiveError(
                f"archive header of {self.size} bytes is larger than the {MAX_HEADER_BYTES} bytes a tar "
                "header may hold here; the archive was not made by clawpen export"
            )
        return super()._proc_member(tarfile)  # type: ignore[misc, no-any-return]


def open_stream(path: Path | None = None, fileobj: IO[bytes] | None = None) -> tarfile.TarFile:
    """A tar read as a stream (mode r|) with bounded headers: every archive we read goes through here."""
    return tarfile.open(name=path, fileobj=fileobj, mode="r|", tarinfo=BoundedTarInfo)  # type: ignore[call-overload, no-any-return]


class LimitedReader(io.RawIOBase):
    """Reads through to `src` and refuses to read more than `limit` bytes in total."""

    def __init__(self, src: IO[bytes], limit: int, what: str = "the archive"):
        self._src = src
        self.limit = limit
        self.size = 0
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._src.read(len(b))
        self.size += len(data)
        if self.size > self.limit:
            raise ArchiveError(
                f"{self._what} is larger than {self.limit} bytes (CLAWPEN_IMPORT_MAX_BYTES); "
                "raise that setting to import it",
                status=413,
            )
        b[: len(data)] = data
        return len(data)


class IterReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (Docker's get_archive stream)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class HashingWriter(io.RawIOBase):
    """Writes through to a file while counting bytes and computing sha256."""

    def __init__(self, target: IO[bytes], progress: Progress = no_progress, phase: str = "write"):
        self._target = target
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._progress = progress
        self._phase = phase
        self._reported = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(b)
        self._target.write(data)
        self.sha256.update(data)
        self.size += len(data)
        if self.size - self._reported >= 8 * CHUNK:
            self._reported = self.size
            self._progress(self._phase, self.size, None)
        return len(data)


def file_sha256(path: Path, progress: Progress = no_progress, phase: str = "verify") -> tuple[str, int]:
    digest, size, total = hashlib.sha256(), 0, path.stat().st_size
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if size % (16 * CHUNK) < CHUNK:
                progress(phase, size, total)
    return digest.hexdigest(), size


def _safe_name(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or not parts:
        raise ArchiveError(f"archive entry {name[:200]!r} escapes its directory")
    if parts[0] not in ROOTS:
        raise ArchiveError(f"archive entry {name[:200]!r} is outside data/ and workspace/")
    return "/".join(parts)


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse entries a snapshot of two volumes never holds (devices, escaping names or links)."""
    _safe_name(member.name)
    if member.isdev() or member.isfifo():
        raise ArchiveError(f"archive entry {member.name[:200]!r} is a device or fifo")
    if member.islnk():
        _safe_name(member.linkname)
    elif not (member.isreg() or member.isdir() or member.issym()):
        raise ArchiveError(f"archive entry {member.name[:200]!r} has an unsupported type")


def verify_data_tar(path: Path, expected_sha256: str | None = None, progress: Progress = no_progress) -> int:
    """Check a snapshot's data tar end to end; returns how many entries it holds."""
    if expected_sha256 is not None:
        actual, _ = file_sha256(path, progress)
        if actual != expected_sha256:
            raise ArchiveError(
                f"{path.name} is corrupt or truncated: sha256 {actual[:12]}… does not match the recorded "
                f"{expected_sha256[:12]}…"
            )
    count = 0
    try:
        with open_stream(path) as tar:
            for member in tar:
                check_member(member)
                if member.isreg():
                    reader = tar.extractfile(member)
                    assert reader is not None
                    while reader.read(CHUNK):
                        pass
                count += 1
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ArchiveError(f"{path.name} is not a readable tar archive ({err})") from None
    return count


def _rooted(name: str, root: str) -> str:
    """Podman's get_archive names a directory's entries '' and '/f' where Docker says 'dir' and 'dir/f'."""
    if name == "" or name == "/":
        return root
    return f"{root}{name}" if name.startswith("/") else name


def append_stream(out: tarfile.TarFile, chunks: Iterable[bytes], root: str | None = None) -> int:
    """Copy every entry of a tar stream (one volume from get_archive) into `out`; returns the entry count.

    `root` is the directory's name in Docker's spelling; entries in Podman's spelling are put under it."""
    count = 0
    with open_stream(fileobj=io.BufferedReader(IterReader(chunks), CHUNK)) as src:
        for member in src:
            if root is not None:
                member.name = _rooted(member.name, root)
                if member.islnk():
                    member.linkname = _rooted(member.linkname, root)
            check_member(member)
            out.addfile(member, src.extractfile(member) if member.isreg() else None)
            count += 1
    return count


def copy_stream(src: BinaryIO, dst: IO[bytes], limit: int | None = None) -> tuple[str, int]:
    """Copy a file object; returns (sha256, size). With limit, refuses to copy more than that."""
    digest, size = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            raise ArchiveError("archive entry is larger than its header says")
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest(), size
