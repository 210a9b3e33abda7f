"""What `GET /api/templates` and `clawpen get templates` show of each warm pool: size, ready, starting, on or off.

The pool task (controller.warm_pool.task) writes its report to `<home>/.state/warm-pool.json`
after every pass; the gateway and the CLI read that file. Why a file written by the pool task, and
not the gateway counting the pool's labelled containers itself:
- *ready* means what a claim needs: the slot answers its program's readiness path. Docker cannot
  tell (pool containers have no health check, and a running OpenClaw container answers only tens of
  seconds later: the "refilling" an operator wants to see). Only the pool task probes its slots, on
  every pass; counting labels in the gateway would call a booting slot ready, or probe every slot
  again on every GET.
- *on or off* is the controller's decision (a local Docker engine, not Podman, a root controller, a
  program that takes its config after start). A gateway or CLI in another process may run as
  another user or without an engine at all; it shows what the controller decided instead of guessing.
- `clawpen up` (one process), a separate `clawpen gateway` and the CLI all read the same home: no
  new port, call or shared memory (the claim book next to it works the same way).
The task rewrites the file at least every HEARTBEAT_S, also while a long refill runs (an image
build), so a report older than STALE_S means no controller keeps the pool any more: it is shown off,
with the last counts. Everything here but the two file helpers is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.json_map import read_json_map, save_json_map

HEARTBEAT_S = 15.0  # the task rewrites an unchanged report this often
STALE_S = 60.0  # a report older than this: no controller keeps the pool
PODMAN = "warm pools do not run on Podman (a container's network is fixed at create there)"
NOT_ROOT = "warm pools need the controller to run as root (OpenClaw's secret files must be owned by the agent's uid)"
REMOTE = "warm pools need a local Docker engine (this one is remote)"
TURNED_OFF = "warm pools are turned off for this runtime"
UNKNOWN_TEMPLATE = "not in the controller's templates (restart it after an edit)"


@dataclass(frozen=True)
class PoolStatus:
    size: int  # containers the pool keeps (templates whose containers look the same share one pool)
    ready: int = 0  # started and answering: a new agent claims one of these
    starting: int = 0  # started, not answering yet
    enabled: bool = True  # whether a controller keeps this pool
    reason: str | None = None  # why it is off (or, when on, why it does not fill)


def status_path(home: Path) -> Path:
    return home / ".state" / "warm-pool.json"


def local_engine(runtime: str) -> str:
    return f"warm pools need a local Docker engine (runtime: {runtime})"


def pool_off_reason(*, enabled: bool, remote: bool, root: bool) -> str | None:
    """Why a Docker runtime has no pool (None: it has one). The runtime's own condition, worded."""
    if not enabled:
        return TURNED_OFF
    if remote:
        return REMOTE
    if not root:
        return NOT_ROOT
    return None


def off_report(sizes: Mapping[str, int], reason: str) -> dict[str, PoolStatus]:
    """Every pooled template off, for the same reason (no pool on this runtime)."""
    return {name: PoolStatus(size, enabled=False, reason=reason) for name, size in sorted(sizes.items())}


def pool_report(
    sizes: Mapping[str, int],
    shapes: Mapping[str, str],
    off: Mapping[str, str],
    slots: Iterable[tuple[str, bool]],
    *,
    error: str | None = None,
) -> dict[str, PoolStatus]:
    """sizes: template → warmPool; shapes: template → the shape of its pool container; off: template
    → why it has no pool (its program takes no config after start, it cannot be planned); slots:
    (shape, answers) of every unclaimed slot the pool keeps; error: the last refill's failure."""
    ready: dict[str, int] = {}
    starting: dict[str, int] = {}
    for shape, answers in slots:
        counts = ready if answers else starting
        counts[shape] = counts.get(shape, 0) + 1
    shared: dict[str, int] = {}
    for name, shape in shapes.items():
        shared[shape] = shared.get(shape, 0) + sizes.get(name, 0)
    out = {}
    for name, size in sorted(sizes.items()):
        if name in off or name not in shapes:
            why = off.get(name, "the controller cannot plan its container")
            out[name] = PoolStatus(size, enabled=False, reason=why)
            continue
        shape = shapes[name]
        reason = f"the last refill failed: {error}" if error else None
        out[name] = PoolStatus(shared[shape], ready.get(shape, 0), starting.get(shape, 0), reason=reason)
    return out


def report_json(report: Mapping[str, PoolStatus], now: datetime) -> dict[str, Any]:
    return {"checked_at": now.isoformat(), "templates": {name: asdict(s) for name, s in sorted(report.items())}}


def save_report(path: Path, report: Mapping[str, PoolStatus], now: datetime | None = None) -> None:
    save_json_map(path, report_json(report, now or datetime.now(UTC)), indent=1)


def pool_view(data: Mapping[str, Any], sizes: Mapping[str, int], now: datetime, runtime: str) -> dict[str, PoolStatus]:
    """What the reader shows for each template with a warmPool (sizes: from its own catalog), given
    the task's report `data` ({} when there is none) and the reader's runtime kind."""
    if not data and runtime != "docker":
        return off_report(sizes, local_engine(runtime))
    try:
        checked = datetime.fromisoformat(str(data["checked_at"]))
        reported = dict(data["templates"])
    except (KeyError, TypeError, ValueError):
        return off_report(sizes, "no report from the controller yet: is it running?")
    age = (now - checked).total_seconds()
    out = {}
    for name, size in sorted(sizes.items()):
        try:
            status = PoolStatus(**reported[name])
        except (KeyError, TypeError):
            status = PoolStatus(size, enabled=False, reason=UNKNOWN_TEMPLATE)
        if age > STALE_S and status.enabled:
            status = PoolStatus(
                status.size,
                status.ready,
                status.starting,
                enabled=False,
                reason=f"no report from the controller for {int(age)} s: is it running?",
            )
        out[name] = status
    return out


def read_view(home: Path, sizes: Mapping[str, int], runtime: str, now: datetime | None = None) -> dict[str, PoolStatus]:
    """pool_view() of the report in `home`; {} when no template asks for a pool (no file read)."""
    if not sizes:
        return {}
    return pool_view(read_json_map(status_path(home)), sizes, now or datetime.now(UTC), runtime)


def summary(status: PoolStatus) -> str:
    """One table cell: `2/2 ready`, `1/2 ready, 1 starting`, `off (reason)`."""
    if not status.enabled:
        return f"off ({status.reason})" if status.reason else "off"
    text = f"{status.ready}/{status.size} ready"
    if status.starting:
        text += f", {status.starting} starting"
    return f"{text} ({status.reason})" if status.reason else text


def with_pools(entries: list[dict[str, Any]], home: Path, runtime: str) -> list[dict[str, Any]]:
    """Template entries (the catalog's fields plus `id`) with their `warm_pool` status in place of the
    catalog's size: only on templates that set warmPool. What the API and `clawpen get templates` show."""
    sizes = {str(e["id"]): int(e.get("warm_pool") or 0) for e in entries if e.get("warm_pool")}
    pools = read_view(home, sizes, runtime)
    out = []
    for entry in entries:
        entry = {k: v for k, v in entry.items() if k != "warm_pool"}
        if entry["id"] in pools:
            entry["warm_pool"] = asdict(pools[entry["id"]])
        out.append(entry)
    return out
