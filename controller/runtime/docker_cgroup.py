"""Usage samples read straight from the kernel's cgroup files when the engine runs on this machine.

The engine's stats API answers only at its collector's next tick: every call, one-shot or not,
subscribes to a loop that reads all containers' cgroups once a second, so 50 agents cost at least
one tick plus that loop's own walk over every container on the host (1–2 s, measured 2.1–2.3 s for
/api/metrics with 50 agents, slower the more containers the host runs). The numbers it reports are
files under /sys/fs/cgroup and /proc, readable here in microseconds. So when the engine is local,
a sample is read from those files and shaped like the engine's own sample (the same dict
`stats_from_sample` takes, so memory, CPU and network mean exactly what `docker stats` means):
- the container's init pid comes from one inspect, kept per container and re-checked on every read
  (its /proc/<pid>/cgroup must still name the container's id: a restart or a replace changes it);
- cgroup v1 (memory, cpuacct, pids hierarchies) and v2 (one unified tree) are both read;
- network counters are /proc/<pid>/net/dev of the container's network namespace, loopback left out.
Anything unexpected (a remote engine, a pid in another pid namespace, a cgroup namespace that hides
the path, a file that vanished with the container) returns None, and the caller asks the engine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def _stat_map(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _host_memory() -> int:
    for line in _read(PROC / "meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def system_cpu_usage() -> int:
    """Host CPU time in ns, computed from /proc/stat the way the engine computes system_cpu_usage."""
    fields = _read(PROC / "stat").splitlines()[0].split()[1:8]
    return sum(int(f) for f in fields) * 1_000_000_000 // _CLOCK_TICKS


def network_counters(pid: int) -> dict[str, dict[str, int]]:
    networks: dict[str, dict[str, int]] = {}
    for line in _read(PROC / str(pid) / "net" / "dev").splitlines()[2:]:
        name, _, numbers = line.partition(":")
        name, parts = name.strip(), numbers.split()
        if name and name != "lo" and len(parts) >= 9:
            networks[name] = {"rx_bytes": int(parts[0]), "tx_bytes": int(parts[8])}
    return networks


def cgroup_paths(pid: int) -> dict[str, str]:
    """controller name → path of the process's cgroup ("" → the v2 unified path)."""
    paths: dict[str, str] = {}
    for line in _read(PROC / str(pid) / "cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _v1_dir(controller: str, path: str) -> Path:
    direct = CGROUP_ROOT / controller / path.lstrip("/")
    if direct.is_dir():
        return direct
    for mount in CGROUP_ROOT.iterdir():  # co-mounted hierarchies, e.g. cpu,cpuacct
        if controller in mount.name.split(",") and (mount / path.lstrip("/")).is_dir():
            return mount / path.lstrip("/")
    raise FileNotFoundError(f"no {controller} cgroup for {path}")


def read_sample(container_id: str, pid: int) -> dict[str, Any]:
    """One sample in the engine's shape; raises OSError/ValueError/LookupError when it cannot."""
    paths = cgroup_paths(pid)
    if not any(container_id in path for path in paths.values()):
        raise LookupError("the pid no longer belongs to the container (or its cgroup is hidden from us)")
    if "memory" in paths:  # cgroup v1
        memory_dir = _v1_dir("memory", paths["memory"])
        usage = int(_read(memory_dir / "memory.usage_in_bytes"))
        limit = int(_read(memory_dir / "memory.limit_in_bytes"))
        detail = _stat_map(memory_dir / "memory.stat")
        cpu_total = int(_read(_v1_dir("cpuacct", paths["cpuacct"]) / "cpuacct.usage"))
        pids = int(_read(_v1_dir("pids", paths["pids"]) / "pids.current")) if "pids" in paths else 0
    else:  # cgroup v2
        unified = CGROUP_ROOT / paths[""].lstrip("/")
        usage = int(_read(unified / "memory.current"))
        raw_limit = _read(unified / "memory.max")
        limit = _host_memory() if raw_limit == "max" else int(raw_limit)
        detail = _stat_map(unified / "memory.stat")
        cpu_total = _stat_map(unified / "cpu.stat")["usage_usec"] * 1000
        pids = int(_read(unified / "pids.current")) if (unified / "pids.current").exists() else 0
    host_memory = _host_memory()
    if host_memory and limit > host_memory:  # "no limit" in v1 is a huge number; the engine shows the host's
        limit = host_memory
    return {
        "read": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "memory_stats": {"usage": usage, "limit": limit, "stats": detail},
        "cpu_stats": {
            "cpu_usage": {"total_usage": cpu_total},
            "system_cpu_usage": system_cpu_usage(),
            "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN"),
        },
        "networks": network_counters(pid),
        "pids_stats": {"current": pids},
    }


class NotRunning(Exception):
    """The engine says the container is not running (the caller reports it as the engine would)."""


# Runtimes whose init pid is the agent's own process tree in its own network namespace. Others (gVisor's
# runsc with --network=host) would show the sandbox's or the host's numbers: those are asked of the engine.
DIRECT_RUNTIMES = frozenset({"", "runc", "crun", "io.containerd.runc.v2"})
ASK_ENGINE = -1


class CgroupUsage:
    """Per-container (id, pid) kept between samples; `sample` returns None when the files cannot say."""

    def __init__(self) -> None:
        self.available = CGROUP_ROOT.is_dir() and (PROC / "stat").exists() and hasattr(os, "sysconf")
        self._known: dict[str, tuple[str, int]] = {}  # container name -> (id, pid or ASK_ENGINE)
        self._lock = threading.Lock()
        self._unreadable = 0  # fresh pids whose files could not be read, in a row

    UNREADABLE_LIMIT = 5  # then the engine's pids are not ours to read (e.g. we run in a container)

    def sample(self, name: str, inspect: Callable[[str], dict[str, Any]]) -> dict[str, Any] | None:
        """`inspect(name)` is the engine's inspect (raising for a missing container); it is called
        only when the container is new to us or its pid went stale. Raises NotRunning."""
        if not self.available:
            return None
        with self._lock:
            known = self._known.get(name)
        for attempt in range(2):
            if known is None or attempt == 1:
                known = self._inspect(name, inspect)
            if known[1] == ASK_ENGINE:
                return None
            try:
                sample = read_sample(*known)
            except (OSError, ValueError, LookupError, IndexError):
                continue  # stale pid (restart, replace) or the files are not ours to read: inspect again
            self._unreadable = 0
            return sample
        self.forget(name)
        self._unreadable += 1
        if self._unreadable >= self.UNREADABLE_LIMIT:
            self.available = False  # another pid namespace or a hidden cgroup tree: ask the engine
        return None

    def _inspect(self, name: str, inspect: Callable[[str], dict[str, Any]]) -> tuple[str, int]:
        attrs = inspect(name)
        state = attrs.get("State") or {}
        pid = int(state.get("Pid") or 0)
        if not state.get("Running") or pid <= 0:
            self.forget(name)
            raise NotRunning(name)
        runtime = str((attrs.get("HostConfig") or {}).get("Runtime") or "")
        known = (str(attrs.get("Id") or ""), pid if runtime in DIRECT_RUNTIMES else ASK_ENGINE)
        with self._lock:
            self._known[name] = known
        return known

    def forget(self, name: str) -> None:
        with self._lock:
            self._known.pop(name, None)
