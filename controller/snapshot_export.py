"""The agent export archive, and the glue that turns snapshots into new agents through the Store.

An export is a plain tar of three entries, in this order: manifest.json (format, and the snapshot's
size and sha256), agent.yaml (the spec), data.tar (the snapshot's data). The manifest comes first so
an importer knows what data.tar must hash to before reading it; data.tar is copied to disk while
hashing, then checked entry by entry, and only then does anything get created: a corrupt or
truncated upload is refused and no agent or volume changes.

Clone and import fill the new agent's volumes before its spec is stored, so the controller's first
start already runs on the copied data.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import secrets as pysecrets
import shutil
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import yaml

from controller.archive import (
    CHUNK,
    ArchiveError,
    LimitedReader,
    Progress,
    copy_stream,
    no_progress,
    open_stream,
    verify_data_tar,
)
from controller.resources import Agent, ManifestError, parse_resource
from controller.snapshots import (
    SnapshotConflict,
    SnapshotError,
    SnapshotInfo,
    Snapshots,
    check_agent_name,
    manifest_of,
    new_snapshot_id,
    renamed,
)

EXPORT_FORMAT = "clawpen.dev/agent-export/v1"


def export(snaps: Snapshots, agent: Agent, out: IO[bytes], progress: Progress = no_progress) -> SnapshotInfo:
    """Snapshot the agent now and write one archive (manifest, spec, data) to `out`."""
    info = snaps.create(agent, progress)
    for chunk in export_chunks(snaps, agent.metadata.name, info.id, progress):
        out.write(chunk)
    return info

def export_chunks(snaps: Snapshots, agent: str, sid: str, progress: Progress = no_progress) -> Iterator[bytes]:
    """An existing snapshot as an export archive, streamed: a plain tar of manifest.json, agent.yaml
    and data.tar (built by hand so a response can send it while it is read)."""
    info = snaps.get(agent, sid)
    folder = snaps.path(agent, sid)
    manifest = {"format": EXPORT_FORMAT, "agent": agent, "snapshot": info.public()}
    spec = (folder / "agent.yaml").read_bytes()
    for name, blob in (("manifest.json", json.dumps(manifest, indent=1).encode()), ("agent.yaml", spec)):
        yield _header(name, len(blob)) + blob + b"\0" * (-len(blob) % 512)
    data = folder / "data.tar"
    size = data.stat().st_size
    yield _header("data.tar", size)
    done = 0
    with data.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            done += len(chunk)
            if done % (8 * CHUNK) < CHUNK or done == size:
                progress("export", done, size)
            yield chunk
    if done != size:
        raise SnapshotError(f"snapshot {agent}/{sid} changed while it was exported")
    yield b"\0" * (-size % 512) + b"\0" * 1024  # end-of-archive: two zero blocks

def receive(
    snaps: Snapshots,
    src: BinaryIO,
    name: str | None = None,
    progress: Progress = no_progress,
    max_bytes: int | None = None,
) -> tuple[Agent, SnapshotInfo]:
    """Read and verify an export into a snapshot of the (possibly renamed) agent; touches no volume."""
    incoming = snaps.root / f".incoming-{pysecrets.token_hex(4)}"
    incoming.mkdir(parents=True, mode=0o700)
    try:
        if max_bytes is not None:
            src = io.BufferedReader(LimitedReader(src, max_bytes), CHUNK)  # type: ignore[assignment]
        manifest, spec = _unpack_export(src, incoming, progress)
        agent = renamed(spec, name) if name else spec
        target = check_agent_name(agent.metadata.name)
        snap = manifest["snapshot"]
        sid, stamp = new_snapshot_id(), datetime.now(UTC)
        info = SnapshotInfo(sid, target, stamp, int(snap["size_bytes"]), str(snap["sha256"]))
        (incoming / "agent.yaml").write_text(yaml.safe_dump(manifest_of(agent), sort_keys=False))
        (incoming / "meta.json").write_text(json.dumps(info.public(), indent=1))
        (snaps.root / target).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.rename(incoming, snaps.root / target / sid)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return agent, info

def _unpack_export(src: BinaryIO, into: Path, progress: Progress) -> tuple[dict[str, Any], Agent]:
    manifest: dict[str, Any] | None = None
    spec: Agent | None = None
    try:
        with open_stream(fileobj=src) as tar:
            for member in tar:
                if not member.isreg() or member.name not in ("manifest.json", "agent.yaml", "data.tar"):
                    raise ArchiveError(f"unexpected entry {member.name[:200]!r} in an agent export")
                reader = tar.extractfile(member)
                assert reader is not None
                if member.name == "manifest.json":
                    manifest = _parse_manifest(reader.read(1 << 20))
                elif member.name == "agent.yaml":
                    spec = _parse_spec(reader.read(1 << 20))
                else:
                    if manifest is None:
                        raise ArchiveError("an agent export starts with manifest.json")
                    with (into / "data.tar").open("wb") as fh:
                        digest, size = copy_stream(reader, fh)  # type: ignore[arg-type]
                    expected = manifest["snapshot"]
                    if digest != expected["sha256"] or size != int(expected["size_bytes"]):
                        raise ArchiveError(
                            "the export is corrupt or truncated: data.tar does not match the sha256 "
                            "and size in its manifest"
                        )
    except (tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"not a readable agent export: the archive is corrupt or truncated ({err})") from None
    if manifest is None or spec is None or not (into / "data.tar").exists():
        raise ArchiveError("incomplete agent export: it needs manifest.json, agent.yaml and data.tar")
    verify_data_tar(into / "data.tar", None, progress)
    return manifest, spec



def _header(name: str, size: int) -> bytes:
    member = tarfile.TarInfo(name)
    member.size = size
    member.mode = 0o600
    member.mtime = int(datetime.now(UTC).timestamp())
    return member.tobuf(format=tarfile.PAX_FORMAT)


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
        snap = doc["snapshot"]
        if doc.get("format") != EXPORT_FORMAT:
            raise ArchiveError(f"not a Claw Pen agent export (format {doc.get('format')!r}, want {EXPORT_FORMAT})")
        if not re.fullmatch(r"[0-9a-f]{64}", str(snap["sha256"])) or int(snap["size_bytes"]) < 0:
            raise ValueError("bad sha256 or size")
        return doc  # type: ignore[no-any-return]
    except (ValueError, KeyError, TypeError) as err:
        raise ArchiveError(f"the export's manifest.json is corrupt ({err})") from None


def _parse_spec(raw: bytes) -> Agent:
    try:
        parsed = parse_resource(yaml.safe_load(raw))
    except (yaml.YAMLError, ManifestError) as err:
        raise ArchiveError(f"the export's agent.yaml is invalid ({err})") from None
    if not isinstance(parsed, Agent):
        raise ArchiveError("the export's agent.yaml is not an Agent")
    return parsed



# ---- glue with the Store (for the CLI and the gateway) ------------------------------------------------


async def _ensure_absent(store: Any, name: str, namespace: str) -> None:
    from controller.store.base import NotFound

    try:
        await store.get(Agent, name, namespace)
    except NotFound:
        return
    raise SnapshotConflict(f"agent {namespace}/{name} already exists; choose another name")


async def snapshot_agent(
    store: Any, snaps: Snapshots, name: str, namespace: str = "default", progress: Progress = no_progress
) -> SnapshotInfo:
    agent = await store.get(Agent, name, namespace)
    return await asyncio.to_thread(snaps.create, agent, progress)


async def clone_agent(
    store: Any, snaps: Snapshots, source: str, sid: str, new_name: str, progress: Progress = no_progress
) -> Agent:
    """Create agent `new_name` from a snapshot of `source`: volumes first, then the spec."""
    spec = snaps.spec(source, sid)
    await _ensure_absent(store, new_name, spec.metadata.namespace)
    clone = await asyncio.to_thread(snaps.clone, source, sid, new_name, progress)
    return await store.create(clone)  # type: ignore[no-any-return]


async def export_agent(
    store: Any, snaps: Snapshots, name: str, out: IO[bytes], namespace: str = "default",
    progress: Progress = no_progress,
) -> SnapshotInfo:
    agent = await store.get(Agent, name, namespace)
    return await asyncio.to_thread(export, snaps, agent, out, progress)


async def import_agent(
    store: Any,
    snaps: Snapshots,
    src: BinaryIO,
    name: str | None = None,
    progress: Progress = no_progress,
    max_bytes: int | None = None,
) -> Agent:
    """Recreate an exported agent: verify the whole archive, fill its volumes, then store its spec."""
    if name:
        await _ensure_absent(store, check_agent_name(name), "default")
    agent, info = await asyncio.to_thread(receive, snaps, src, name, progress, max_bytes)
    key = f"{agent.metadata.namespace}/{agent.metadata.name}"
    try:
        await _ensure_absent(store, agent.metadata.name, agent.metadata.namespace)
    except SnapshotConflict:
        snaps.delete(agent.metadata.name, info.id)
        raise
    data = snaps.path(agent.metadata.name, info.id) / "data.tar"
    await asyncio.to_thread(snaps.fill_volumes, key, data, progress)
    return await store.create(agent)  # type: ignore[no-any-return]
