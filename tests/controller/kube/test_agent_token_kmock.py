"""Agent tokens on Kubernetes: kept in the agent's Secret (written by the runtime's apply), read back
from there by the operator (so it is not regenerated) and by the gateway (controller.agent_token)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import kmock
import pytest

from controller.agent_token import (
    TOKEN_NAME,
    TOKEN_SCOPE,
    KubeAgentTokens,
    auth_headers,
    open_agent_tokens,
    token_version,
)
from controller.kube.client import api_client_for
from controller.plan import SecretMount, WorkloadPlan
from controller.runtime.kubernetes import KubernetesRuntime

SECRETS = "v1/secrets"
AGENTS = "clawpen.dev/v1alpha1/agents"


@pytest.fixture
async def runtime(kmock: kmock.KubernetesEmulator) -> AsyncIterator[KubernetesRuntime]:
    for resource in (
        "apps/v1/statefulsets",
        "v1/services",
        SECRETS,
        "networking.k8s.io/v1/networkpolicies",
        "v1/pods",
        AGENTS,
        "v1/persistentvolumeclaims",
    ):
        kmock.resources[resource] = kmock.ResourceInfo(namespaced=True)
    rt = KubernetesRuntime(api_client_for(str(kmock.url)), instance="t-kmock")
    yield rt
    await rt.close()


async def test_token_lives_in_the_agents_secret(
    runtime: KubernetesRuntime, kmock: kmock.KubernetesEmulator, tmp_path
) -> None:
    kmock.objects[AGENTS, "default", "finn"] = {"metadata": {"name": "finn", "namespace": "default", "uid": "u-1"}}
    tokens = open_agent_tokens(tmp_path, runtime)
    assert isinstance(tokens, KubeAgentTokens)
    assert await tokens.get("default/finn") is None
    token = await tokens.ensure("default/finn")
    assert await auth_headers(tokens, "default/finn") == {}  # not stored until the runtime applies it

    plan = WorkloadPlan(
        namespace="default",
        name="finn",
        instance="t-kmock",
        image="img",
        env={},
        memory_mb=256,
        cpu=0.5,
        restart_policy="always",
        mounts=(),
        secrets=(SecretMount(TOKEN_NAME, TOKEN_SCOPE, token_version(token)),),
    )
    await runtime.apply(plan, {TOKEN_NAME: token.encode()})
    assert await tokens.ensure("default/finn") == token  # read back, not regenerated
    assert await auth_headers(tokens, "default/finn") == {"authorization": f"Bearer {token}"}
    assert not list(tmp_path.iterdir())  # nothing on the operator's disk
