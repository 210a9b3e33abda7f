"""`clawpen operator`: its settings (store always kube; runtime kubernetes unless docker is asked for)."""

from __future__ import annotations

import pytest

from controller.cli import build_parser
from controller.commands.operator import operator_settings


def test_store_is_always_the_cluster_and_runtime_defaults_to_kubernetes() -> None:
    cfg = operator_settings({"CLAWPEN_HOME": "/tmp/x", "CLAWPEN_STORE": "files"})
    assert (cfg.store, cfg.runtime) == ("kube", "kubernetes")


def test_docker_host_runtime_can_be_chosen() -> None:
    assert operator_settings({"CLAWPEN_HOME": "/tmp/x", "CLAWPEN_RUNTIME": "docker"}).runtime == "docker"


def test_unknown_runtime_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="CLAWPEN_RUNTIME: unknown runtime 'podman-k8s'"):
        operator_settings({"CLAWPEN_HOME": "/tmp/x", "CLAWPEN_RUNTIME": "podman-k8s"})


def test_cli_registers_operator_with_namespace_scoping() -> None:
    args = build_parser().parse_args(
        ["operator", "-n", "team-a", "-n", "team-b", "--liveness", "http://0.0.0.0:8081/healthz"]
    )
    assert args.namespace == ["team-a", "team-b"] and args.liveness.endswith("/healthz")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["operator", "-n", "a", "--all-namespaces"])


def test_watch_timeouts_are_whole_seconds() -> None:
    """kopf passes server_timeout as ?timeoutSeconds=; a real API server refuses "300.0" (found in e2e)."""
    import kopf

    from controller.operator import configure

    settings = kopf.OperatorSettings()
    configure(settings)
    assert isinstance(settings.watching.server_timeout, int) and settings.watching.server_timeout == 300
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert settings.persistence.finalizer == "clawpen.dev/finalizer"
