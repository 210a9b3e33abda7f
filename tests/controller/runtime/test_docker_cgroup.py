"""Usage read from cgroup files (controller/runtime/docker_cgroup.py) against the real engine.

The engine's stats API answers only at its collector's next 1 s tick, which kept /api/metrics with
50 agents above 2 s; a local engine's numbers are now read from the files it reads itself. These
tests hold the two to the same meaning on a real container: the same memory, limit, pids and
network counters as the engine's own sample, the pid followed across a restart, a stopped
container reported as not running and a missing one as missing.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from controller.runtime.docker_cgroup import CgroupUsage, NotRunning
from controller.runtime.docker_parse import stats_from_sample

pytestmark = pytest.mark.docker

HOLD = (
    "import time; x = bytearray(24 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
    "print('ready', flush=True); time.sleep(600)"
)


class CountingInspect:
    def __init__(self, client: docker.DockerClient):
        self.client, self.calls = client, 0

    def __call__(self, name: str) -> dict[str, Any]:
        self.calls += 1
        return self.client.api.inspect_container(name)  # type: ignore[no-any-return]


@pytest.fixture()
def container(docker_client: docker.DockerClient, agent_image: str) -> Iterator[Any]:
    c = docker_client.containers.run(
        agent_image,
        entrypoint=["python3", "-c", HOLD],
        name=f"clawpen-test-cgroup-{uuid.uuid4().hex[:8]}",
        detach=True,
        mem_limit="96m",
        labels={"clawpen.dev/test": "cgroup"},
    )
    try:
        for _ in range(600):  # until the 24 MiB are allocated and touched
            if b"ready" in c.logs():
                break
            time.sleep(0.1)
        c.reload()
        yield c
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)


def test_a_sample_means_what_the_engine_reports(docker_client: docker.DockerClient, container: Any) -> None:
    usage = CgroupUsage()
    assert usage.available, "this machine has /sys/fs/cgroup and a local engine"
    inspect = CountingInspect(docker_client)
    ours = usage.sample(container.name, inspect)
    engine = docker_client.api.stats(container.name, stream=False, one_shot=True)
    assert ours is not None, "a local runc container is read from its cgroup"
    mine, theirs = stats_from_sample(ours, first=True), stats_from_sample(engine, first=True)
    assert mine.memory_mb > 24, mine  # the 24 MiB the container holds
    assert abs(mine.memory_mb - theirs.memory_mb) < 4, (mine, theirs)
    assert mine.memory_limit_mb == theirs.memory_limit_mb == 96
    assert mine.pids == theirs.pids >= 1
    assert mine.network_rx_bytes <= theirs.network_rx_bytes + 4096
    assert set(ours["networks"]) == set(engine.get("networks") or {}) and "lo" not in ours["networks"]
    cpu_ours = ours["cpu_stats"]["cpu_usage"]["total_usage"]
    cpu_engine = engine["cpu_stats"]["cpu_usage"]["total_usage"]
    assert 0 < cpu_ours <= cpu_engine + 10**9  # the same counter (ns), read a moment apart
    assert abs(ours["cpu_stats"]["system_cpu_usage"] - engine["cpu_stats"]["system_cpu_usage"]) < 60 * 10**9
    assert ours["cpu_stats"]["online_cpus"] == engine["cpu_stats"]["online_cpus"]
    # The pid is kept: the next sample asks the engine nothing.
    assert usage.sample(container.name, inspect) is not None and inspect.calls == 1


def test_the_pid_is_followed_across_a_restart(docker_client: docker.DockerClient, container: Any) -> None:
    usage, inspect = CgroupUsage(), CountingInspect(docker_client)
    assert usage.sample(container.name, inspect) is not None
    before = container.attrs["State"]["Pid"]
    container.restart(timeout=1)
    container.reload()
    assert container.attrs["State"]["Pid"] != before
    again = usage.sample(container.name, inspect)
    assert again is not None and again["pids_stats"]["current"] >= 1
    assert inspect.calls == 2  # the stale pid was noticed (its cgroup no longer names the container)


def test_stopped_and_missing_containers(docker_client: docker.DockerClient, container: Any) -> None:
    usage, inspect = CgroupUsage(), CountingInspect(docker_client)
    assert usage.sample(container.name, inspect) is not None
    container.stop(timeout=1)
    with pytest.raises(NotRunning):
        usage.sample(container.name, inspect)
    container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        usage.sample(container.name, inspect)


def test_pids_that_are_not_ours_to_read_turn_the_reader_off(
    docker_client: docker.DockerClient, container: Any
) -> None:
    """A controller in a container of its own sees the engine's pids under other numbers (or not at
    all): after a few fresh pids whose cgroup does not name the container, every sample goes to the
    engine instead of paying an inspect each time first."""
    usage = CgroupUsage()

    def elsewhere(name: str) -> dict[str, Any]:
        attrs = docker_client.api.inspect_container(name)
        return {**attrs, "Id": "0" * 64}  # what a pid from another pid namespace amounts to

    for _ in range(CgroupUsage.UNREADABLE_LIMIT):
        assert usage.available
        assert usage.sample(container.name, elsewhere) is None
    assert not usage.available
    assert usage.sample(container.name, docker_client.api.inspect_container) is None
