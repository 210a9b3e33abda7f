"""Pure translations of what the Docker engine returns into the runtime's value types.

Kept apart from DockerRuntime so they are tested without an engine, against the exact shapes Docker
and Podman send: inspect attrs → Observed, a timestamped log line → LogLine, a stats sample → Stats.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from controller.plan import LABEL_INSTANCE, LABEL_PLAN_HASH
from controller.runtime.base import LogLine, Observed, Stats

_ZERO_TIME = "0001-01-01T00:00:00Z"
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")
_LEADING_LEVEL = re.compile(r"^\W{0,2}(ERROR|WARNING|WARN|INFO|DEBUG|CRITICAL|FATAL|TRACE)\b", re.IGNORECASE)
_LEADING_TIME = re.compile(r"^\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?\s*")
_LEVELS = {"warn": "warning", "critical": "error", "fatal": "error", "trace": "debug", "err": "error"}


def parse_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 times with nanoseconds (Python keeps microseconds); the zero time is None."""
    if not value or value.startswith("0001-01-01"):
        return None
    match = _TIME.match(value.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(f"{whole}.{micros}{offset}").astimezone(UTC)


def endpoint_from_ports(ports: dict[str, Any] | None, port: int | None, wildcard_host: str = "127.0.0.1") -> str | None:
    """http://<address>:<host port> for the published chat port (None when not published/running).

    A port published on every address (0.0.0.0) is reached at `wildcard_host`: 127.0.0.1 for a local
    engine, the engine machine's address for a remote one."""
    for container_port, bindings in (ports or {}).items():
        if port is not None and container_port != f"{port}/tcp":
            continue
        for binding in bindings or []:
            if binding.get("HostPort"):
                host = binding.get("HostIp") or "127.0.0.1"
                host = wildcard_host if host in ("0.0.0.0", "") else host
                return f"http://{host}:{binding['HostPort']}"
    return None


def observed_from_attrs(key: str, attrs: dict[str, Any], wildcard_host: str = "127.0.0.1") -> Observed:
    state = attrs.get("State") or {}
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    exposed = list(((attrs.get("Config") or {}).get("ExposedPorts") or {}).keys())
    port = int(exposed[0].split("/")[0]) if len(exposed) == 1 else None
    health = (state.get("Health") or {}).get("Status")
    started = parse_time(state.get("StartedAt"))
    finished = parse_time(state.get("FinishedAt"))
    running = bool(state.get("Running"))
    return Observed(
        key=key,
        exists=True,
        running=running,
        state=str(state.get("Status") or "unknown"),
        plan_hash=labels.get(LABEL_PLAN_HASH),
        instance=labels.get(LABEL_INSTANCE),
        container_id=attrs.get("Id"),
        endpoint=endpoint_from_ports((attrs.get("NetworkSettings") or {}).get("Ports"), port, wildcard_host)
        if running
        else None,
        started_at=started,
        finished_at=finished if not running else None,
        exit_code=None if running or finished is None else int(state.get("ExitCode") or 0),
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(attrs.get("RestartCount") or 0),
        healthy=None if health in (None, "none", "starting") else health == "healthy",
        error=state.get("Error") or None,
    )


def _level_of(message: str) -> str | None:
    text = message.lstrip()
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            for field in ("level", "levelname", "severity", "lvl"):
                if isinstance(record.get(field), str) and record[field]:
                    level = record[field].lower()
                    return _LEVELS.get(level, level)
    # Logging formats often put a timestamp first ("2026-11-24 05:00:00,123 INFO name: ...").
    match = _LEADING_LEVEL.match(_LEADING_TIME.sub("", text, count=1))
    if match:
        level = match.group(1).lower()
        return _LEVELS.get(level, level)
    return None


def parse_log_line(raw: str, stream: Literal["stdout", "stderr"]) -> LogLine:
    """One line of `docker logs --timestamps`: "<RFC 3339 time> <message>"."""
    stamp, sep, message = raw.partition(" ")
    timestamp = parse_time(stamp) if sep else None
    if timestamp is None:
        message = raw
    message = message.rstrip("\r")
    level = _level_of(message) or ("error" if stream == "stderr" else "info")
    return LogLine(timestamp=timestamp, level=level, message=message, stream=stream)


def stats_from_sample(sample: dict[str, Any], *, first: bool = False) -> Stats:
    """Compute what `docker stats` shows from one engine sample (cgroup v1 and v2 shapes).

    `first`: there is no earlier reading to measure CPU against (a one-shot sample), so CPU is 0.
    """
    memory = sample.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    # Page cache is reclaimable: subtract it the way the docker CLI does.
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0
    usage = max(int(memory.get("usage") or 0) - int(cache), 0)
    cpu = sample.get("cpu_stats") or {}
    pre = sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    measurable = not first and cpu_delta > 0 and system_delta > 0
    cpu_percent = (cpu_delta / system_delta) * cpus * 100.0 if measurable else 0.0
    networks = (sample.get("networks") or {}).values()
    return Stats(
        memory_mb=usage / 2**20,
        memory_limit_mb=int(memory.get("limit") or 0) / 2**20,
        cpu_percent=round(cpu_percent, 3),
        network_rx_bytes=sum(int(n.get("rx_bytes") or 0) for n in networks),
        network_tx_bytes=sum(int(n.get("tx_bytes") or 0) for n in networks),
        pids=int((sample.get("pids_stats") or {}).get("current") or 0),
    )
