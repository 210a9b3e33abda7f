"""Warm pool status, the parts without an engine: the report the pool task writes (size, ready,
starting, on or off and why), how the gateway and CLI read it (fresh, stale, missing), and the task
writing why a runtime keeps no pool."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from controller.catalog import Catalog, Template, load_catalog
from controller.runtime.docker import DockerRuntime
from controller.settings import REPO_ROOT
from controller.warm_pool.status import (
    NOT_ROOT,
    REMOTE,
    STALE_S,
    TURNED_OFF,
    UNKNOWN_TEMPLATE,
    PoolStatus,
    pool_off_reason,
    pool_report,
    pool_view,
    read_view,
    report_json,
    save_report,
    status_path,
    summary,
)
from controller.warm_pool.task import Reporter, plan_pools, warm_pool_task

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _catalog(**pools: tuple[str, int]) -> Catalog:
    catalog = load_catalog(REPO_ROOT / "templates")
    extra = {
        name: Template.model_validate(
            {"name": name, "warmPool": size, "config": {"program": program, "llm_provider": "openai"}}
        )
        for name, (program, size) in pools.items()
    }
    return replace(catalog, templates={**catalog.templates, **extra})


def test_report_counts_answering_and_booting_slots_per_template() -> None:
    sizes = {"claw": 2, "other": 3, "plain": 1}
    shapes = {"claw": "s1", "other": "s2"}
    slots = [("s1", True), ("s1", False), ("s2", True), ("s2", True), ("s2", True), ("gone", True)]
    report = pool_report(sizes, shapes, {"plain": "its program takes no config after start"}, slots)
    assert report == {
        "claw": PoolStatus(2, ready=1, starting=1),
        "other": PoolStatus(3, ready=3),
        "plain": PoolStatus(1, enabled=False, reason="its program takes no config after start"),
    }
    assert summary(report["claw"]) == "1/2 ready, 1 starting"
    assert summary(report["other"]) == "3/3 ready"
    assert summary(report["plain"]) == "off (its program takes no config after start)"


def test_templates_planning_the_same_container_share_one_pool() -> None:
    report = pool_report({"a": 1, "b": 2}, {"a": "s", "b": "s"}, {}, [("s", True)] * 3)
    assert report["a"] == report["b"] == PoolStatus(3, ready=3)


def test_a_failed_refill_is_the_reason_of_a_pool_that_stays_on() -> None:
    report = pool_report({"a": 2}, {"a": "s"}, {}, [], error="engine away")
    assert report["a"] == PoolStatus(2, reason="the last refill failed: engine away")
    assert summary(report["a"]) == "0/2 ready (the last refill failed: engine away)"


def test_runtime_conditions_name_why_there_is_no_pool() -> None:
    assert pool_off_reason(enabled=True, remote=False, root=True) is None
    assert pool_off_reason(enabled=True, remote=False, root=False) == NOT_ROOT
    assert pool_off_reason(enabled=True, remote=True, root=True) == REMOTE
    assert pool_off_reason(enabled=False, remote=False, root=True) == TURNED_OFF
    runtime = DockerRuntime("t-status", warm_pool=False)  # no engine call: the client is opened lazily
    assert runtime.warm_pool is None and runtime.warm_pool_off == TURNED_OFF


def test_reader_shows_a_fresh_report_as_written() -> None:
    report = {"claw": PoolStatus(2, ready=2)}
    data = report_json(report, NOW - timedelta(seconds=5))
    assert pool_view(data, {"claw": 2}, NOW, "docker") == report


def test_reader_shows_a_stale_report_off_with_its_last_counts() -> None:
    data = report_json({"claw": PoolStatus(2, ready=1, starting=1)}, NOW - timedelta(seconds=STALE_S + 30))
    view = pool_view(data, {"claw": 2}, NOW, "docker")["claw"]
    assert (view.ready, view.starting, view.enabled) == (1, 1, False)
    assert view.reason == f"no report from the controller for {int(STALE_S) + 30} s: is it running?"


def test_reader_without_a_report() -> None:
    assert pool_view({}, {"claw": 2}, NOW, "docker") == {
        "claw": PoolStatus(2, enabled=False, reason="no report from the controller yet: is it running?")
    }
    assert pool_view({}, {"claw": 2}, NOW, "kubernetes")["claw"].reason == (
        "warm pools need a local Docker engine (runtime: kubernetes)"
    )
    data = report_json({"claw": PoolStatus(2, ready=2)}, NOW)
    assert pool_view(data, {"new": 1}, NOW, "docker") == {"new": PoolStatus(1, enabled=False, reason=UNKNOWN_TEMPLATE)}
    assert pool_view({"checked_at": "yesterday"}, {"claw": 2}, NOW, "docker")["claw"].enabled is False


def test_status_file_round_trip_and_no_read_without_pooled_templates(tmp_path: Path) -> None:
    save_report(status_path(tmp_path), {"claw": PoolStatus(2, ready=2)})
    assert json.loads(status_path(tmp_path).read_text())["templates"]["claw"]["ready"] == 2
    assert read_view(tmp_path, {"claw": 2}, "docker") == {"claw": PoolStatus(2, ready=2)}
    assert read_view(tmp_path, {}, "docker") == {}


def test_reporter_rewrites_only_changes_between_heartbeats(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    reporter = Reporter(path)
    reporter.save({"claw": PoolStatus(2, starting=1)})
    first = json.loads(path.read_text())
    reporter.save({"claw": PoolStatus(2, starting=1)})
    assert json.loads(path.read_text()) == first  # same report, within the heartbeat: not rewritten
    reporter.save({"claw": PoolStatus(2, ready=1)})
    assert json.loads(path.read_text())["templates"]["claw"]["ready"] == 1
    Reporter(None).save({"claw": PoolStatus(2)})  # no file: nothing to do


def test_plan_pools_says_which_templates_cannot_have_a_pool() -> None:
    reconciler = SimpleNamespace(
        catalog=_catalog(claw=("openclaw", 2), plain=("clawpen", 1)),
        instance="i",
        image="img",
        environ={},
        variables=None,
        isolation="default",
    )
    plans = plan_pools(reconciler)
    assert plans.sizes == {"claw": 2, "plain": 1}
    assert set(plans.shapes) == {"claw"} and list(plans.wanted) == [plans.shapes["claw"]]
    assert "takes no config after start" in plans.off["plain"]
    report = pool_report(plans.sizes, plans.shapes, plans.off, [(plans.shapes["claw"], True)])
    assert report["claw"] == PoolStatus(2, ready=1) and report["plain"].enabled is False


async def test_task_on_a_runtime_without_a_pool_reports_why(tmp_path: Path) -> None:
    runtime = DockerRuntime("t-status", warm_pool=False)
    controller = SimpleNamespace(runtime=runtime, reconciler=SimpleNamespace(catalog=_catalog(claw=("openclaw", 2))))
    path = status_path(tmp_path)
    task = asyncio.create_task(warm_pool_task(controller, status_file=path))  # type: ignore[arg-type]
    try:
        for _ in range(200):
            if path.exists():
                break
            await asyncio.sleep(0.05)
        assert read_view(tmp_path, {"claw": 2}, "docker") == {"claw": PoolStatus(2, enabled=False, reason=TURNED_OFF)}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await warm_pool_task(controller) is None  # type: ignore[arg-type]  # no file: returns at once
