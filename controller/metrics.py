"""Prometheus metrics shared by the gateway and the controller, in one registry.

`clawpen up` runs both in one process, so one registry served at the gateway's /metrics shows HTTP
traffic and reconcile work side by side. The metric objects live here (not in api/) so the
controller can record reconciles without importing the web layer.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
)

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

# Reconcile loop (recorded by controller.manager).
reconcile_total = Counter(
    "clawpen_reconcile_total",
    "Reconciles of one agent, by result (ok, requeue, error).",
    ["result"],
    registry=REGISTRY,
)
reconcile_seconds = Histogram(
    "clawpen_reconcile_seconds",
    "Wall time of one reconcile.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
agents_by_phase = Gauge(
    "clawpen_agents",
    "Agents by their status phase (refreshed from the store at every scrape).",
    ["phase"],
    registry=REGISTRY,
)

# Gateway (recorded by api.middleware.RequestMetrics). `route` is the route template, never the raw
# path, so an agent name never becomes a label value of its own.
http_requests_total = Counter(
    "clawpen_http_requests_total",
    "HTTP requests and WebSocket sessions served by the gateway.",
    ["method", "route", "code"],
    registry=REGISTRY,
)
http_request_seconds = Histogram(
    "clawpen_http_request_seconds",
    "Time to answer an HTTP request (WebSocket sessions excluded).",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)


def record_reconcile(key: str, result: str, seconds: float) -> None:
    """controller.manager.Controller's on_reconcile hook (the key stays out of the labels)."""
    reconcile_total.labels(result).inc()
    reconcile_seconds.observe(seconds)
