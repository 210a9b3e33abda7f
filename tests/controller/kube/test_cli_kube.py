"""`clawpen apply/get/delete` with CLAWPEN_STORE=kube: the real CLI, in a subprocess, against kmock
through a kubeconfig file — the same manifests as with the file store, stored as custom resources."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import kmock
import pytest

ROOT = Path(__file__).resolve().parents[3]
AGENTS = "clawpen.dev/v1alpha1/agents"


async def clawpen(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
def cli_env(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> dict[str, str]:
    kmock.resources[AGENTS] = kmock.ResourceInfo(kind="Agent", namespaced=True, subresources={"status"})
    kmock.resources["clawpen.dev/v1alpha1/teams"] = kmock.ResourceInfo(kind="Team", namespaced=True)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(kmock.url).rstrip('/')}'}}}}]\n"
        "users: [{name: anyone, user: {token: not-a-secret}}]\n"
        "contexts: [{name: kmock, context: {cluster: kmock, user: anyone}}]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWPEN_", "KUBE"))}
    env.update(
        CLAWPEN_STORE="kube",
        CLAWPEN_KUBECONFIG=str(kubeconfig),
        CLAWPEN_HOME=str(tmp_path / "home"),
        PYTHONPATH=str(ROOT),
    )
    return env


async def test_apply_get_delete_through_the_kube_store(
    cli_env: dict[str, str], kmock: kmock.KubernetesEmulator
) -> None:
    example = ROOT / "deploy" / "kubernetes" / "examples" / "agent-finn.yaml"
    code, out, err = await clawpen("apply", "-f", str(example), env=cli_env)
    assert code == 0, err
    stored = kmock.objects[AGENTS, "default", "finn"]
    assert stored["spec"]["model"] == "gpt-4o" and stored["metadata"]["labels"] == {"team": "finance"}

    code, out, err = await clawpen("get", "agents", "-o", "yaml", env=cli_env)
    assert code == 0, err
    assert "name: finn" in out and "gpt-4o" in out

    code, out, err = await clawpen("delete", "agent", "finn", env=cli_env)
    assert code == 0, err
    assert kmock.objects[AGENTS, "default", "finn"].deleted


async def test_unreachable_cluster_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWPEN_", "KUBE"))}
    env.update(CLAWPEN_STORE="kube", CLAWPEN_KUBECONFIG=str(tmp_path / "missing"), PYTHONPATH=str(ROOT))
    env["CLAWPEN_HOME"] = str(tmp_path / "home")
    code, out, err = await clawpen("get", "agents", env=env)
    assert code == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
