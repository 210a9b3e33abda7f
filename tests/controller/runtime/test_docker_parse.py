"""Engine responses → Observed / LogLine / Stats, on the shapes Docker actually sends (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.plan import LABEL_INSTANCE, LABEL_PLAN_HASH
from controller.runtime.docker_parse import observed_from_attrs, parse_log_line, parse_time, stats_from_sample


def test_parse_time_handles_nanoseconds_offsets_and_the_zero_time() -> None:
    assert parse_time("2026-11-24T05:10:54.123456789Z") == datetime(
        2026, 11, 24, 5, 10, 54, 123456, tzinfo=UTC
    )
    assert parse_time("2026-11-24T07:10:54+02:00") == datetime(2026, 11, 24, 5, 10, 54, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None and parse_time("yesterday") is None


def _attrs(running: bool, **state: object) -> dict:
    return {
        "Id": "abc123",
        "RestartCount": 2,
        "State": {
            "Status": "running" if running else "exited",
            "Running": running,
            "StartedAt": "2026-11-24T05:00:00.5Z",
            "FinishedAt": "0001-01-01T00:00:00Z" if running else "2026-11-24T05:01:00Z",
            "ExitCode": 0 if running else 137,
            "OOMKilled": False,
            "Error": "",
            **state,
        },
        "Config": {
            "Labels": {LABEL_PLAN_HASH: "h1", LABEL_INSTANCE: "inst"},
            "ExposedPorts": {"8080/tcp": {}},
        },
        "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]}},
    }


def test_observed_from_a_running_container() -> None:
    observed = observed_from_attrs("ns/a", _attrs(True))
    assert observed.exists and observed.running and observed.state == "running"
    assert (observed.plan_hash, observed.instance, observed.container_id) == ("h1", "inst", "abc123")
    assert observed.endpoint == "http://127.0.0.1:49153"
    assert observed.exit_code is None and observed.finished_at is None and observed.restart_count == 2


def test_observed_from_an_oom_killed_container() -> None:
    observed = observed_from_attrs("ns/a", _attrs(False, OOMKilled=True, Error="boom"))
    assert not observed.running and observed.endpoint is None
    assert observed.exit_code == 137 and observed.oom_killed and observed.error == "boom"
    assert observed.finished_at == datetime(2026, 11, 24, 5, 1, tzinfo=UTC)


def test_log_levels_from_json_words_and_stream() -> None:
    stamp = "2026-11-24T05:00:00.000000001Z"
    line = parse_log_line(f'{stamp} {{"level": "WARN", "msg": "slow"}}', "stdout")
    assert line.level == "warning" and line.timestamp is not None and line.message.startswith("{")
    assert parse_log_line(f"{stamp} INFO:     Started server", "stderr").level == "info"
    assert parse_log_line(f"{stamp} [error] disk full", "stdout").level == "error"
    assert parse_log_line(f"{stamp} Traceback (most recent call last):", "stderr").level == "error"
    assert parse_log_line(f"{stamp} hello", "stdout").level == "info"
    logged = parse_log_line(f"{stamp} 2026-11-24 05:00:00,123 INFO uvicorn.error: Started server", "stderr")
    assert logged.level == "info"
    assert parse_log_line(f"{stamp} [2026-11-24T05:00:00Z] WARNING slow", "stderr").level == "warning"
    untimed = parse_log_line("no timestamp here", "stdout")
    assert untimed.timestamp is None and untimed.message == "no timestamp here"


def test_stats_from_a_cgroup_v1_sample() -> None:
    sample = {
        "memory_stats": {
            "usage": 60 * 2**20,
            "limit": 256 * 2**20,
            "stats": {"total_inactive_file": 10 * 2**20},
        },
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000}, "system_cpu_usage": 20_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000},
        "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 40}, "eth1": {"rx_bytes": 5, "tx_bytes": 2}},
        "pids_stats": {"current": 7},
    }
    stats = stats_from_sample(sample)
    assert stats.memory_mb == 50 and stats.memory_limit_mb == 256
    assert stats.cpu_percent == 40.0  # 2000/10000 of the host, times 2 CPUs
    assert (stats.network_rx_bytes, stats.network_tx_bytes, stats.pids) == (105, 42, 7)


def test_stats_of_a_first_sample_without_history_is_zero_cpu() -> None:
    stats = stats_from_sample({"memory_stats": {}, "cpu_stats": {}, "precpu_stats": {}})
    assert stats.cpu_percent == 0.0 and stats.memory_mb == 0 and stats.network_rx_bytes == 0
