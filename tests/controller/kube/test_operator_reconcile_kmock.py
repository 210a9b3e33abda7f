"""The whole Kubernetes mode in one process against kmock: kopf operator → real Reconciler →
KubeStore (Agent/Team custom resources) and KubernetesRuntime (StatefulSet, Service, Secret,
NetworkPolicy) → status written back. Only the secret store is a dict (it is not what is tested).

kmock runs no controllers, so no pods appear: agents stay Pending/Starting here, which is what a
cluster reports while a pod is being scheduled. tests/e2e/kube covers a real API server.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kmock
import pytest

from controller import operator
from controller.catalog import load_catalog
from controller.kube.client import api_client_for
from controller.reconcile import Reconciler
from controller.resources import Agent, AgentStatus, Team, TeamStatus
from controller.runtime.kubernetes import KubernetesRuntime
from controller.settings import REPO_ROOT
from controller.store.base import InvalidObject
from controller.store.kube import KubeStore
from controller.team_sync import sync_team_statuses
from controller.teams.model import router_problem
from tests.support.kopf_kmock import AGENTS, eventually, posted_events, running_operator, settled

TEAMS = "clawpen.dev/v1alpha1/teams"
STS = "apps/v1/statefulsets"
SECRETS = "v1/secrets"


@dataclass(frozen=True)
class Resolved:
    name: str
    scope: str
    version: str


@dataclass
class DictSecrets:
    values: dict[str, bytes]

    def resolve(self, agent: str, names: Iterable[str]) -> Mapping[str, Resolved]:
        return {n: Resolved(n, "global", "v1") for n in names if n in self.values}

    def read(self, info: Resolved) -> bytes:
        return self.values[info.name]


def declare(server: kmock.KubernetesEmulator) -> None:
    for resource, kind in ((AGENTS, "Agent"), (TEAMS, "Team")):
        server.resources[resource] = server.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=True,
            subresources={"status"},
            verbs={"list", "watch", "patch"},
        )
    for resource in (
        STS,
        "v1/services",
        SECRETS,
        "networking.k8s.io/v1/networkpolicies",
        "v1/pods",
        "v1/events",
    ):
        server.resources[resource] = server.ResourceInfo(namespaced=True)
    server.resources["v1/namespaces"] = server.ResourceInfo(kind="Namespace", namespaced=False)
    server.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = server.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False
    )


@pytest.fixture
async def plane(kmock: kmock.KubernetesEmulator) -> AsyncIterator[KubeStore]:
    declare(kmock)
    store = KubeStore(api_client_for(str(kmock.url)))
    runtime = KubernetesRuntime(api_client_for(str(kmock.url)), instance="t-op")
    catalog = load_catalog(REPO_ROOT / "templates")
    reconciler = Reconciler(
        store,
        runtime,
        catalog,
        instance="t-op",
        image="clawpen/agent:test",
        secrets=DictSecrets({"OPENAI_API_KEY": b"sk-from-the-store"}),
        environ={},
    )
    ctx = operator.OperatorContext(
        reconciler=reconciler,
        runtime=runtime,
        resync_seconds=0.5,
        sync_teams=lambda report: sync_team_statuses(
            store, report, lambda team: router_problem(team, catalog.providers, {})
        ),
        team_period=0.2,
    )

    try:
        async with running_operator(ctx, kmock):
            yield store
    finally:
        await store.close()
        await runtime.close()


async def seed(server: kmock.KubernetesEmulator, store: KubeStore, resource: str, body: dict[str, Any]) -> None:
    """Store an object (kmock assigns no uid/resourceVersion) and announce it with a status write."""
    meta = body["metadata"]
    meta.update(namespace="default", resourceVersion="1", uid=f"uid-{meta['name']}")
    server.objects[resource, "default", meta["name"]] = body
    cls = Agent if body["kind"] == "Agent" else None
    if cls is not None:
        await store.update_status(Agent, meta["name"], AgentStatus())
    else:
        from controller.resources import Team, TeamStatus

        await store.update_status(Team, meta["name"], TeamStatus())


def agent(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"provider": "openai", "model": "gpt-4o", "secrets": ["OPENAI_API_KEY"]},
    }


async def test_agent_lifecycle_through_the_real_reconciler(plane: KubeStore, kmock: kmock.KubernetesEmulator) -> None:
    await seed(kmock, plane, AGENTS, agent("finn"))

    def sts() -> Any:
        try:
            obj = kmock.objects[STS, "default", "agent-finn"]
        except KeyError:
            return None
        return None if obj.deleted else obj

    await eventually(lambda: sts() is not None, what=lambda: [str(k) for k in kmock.objects])
    spec = sts()["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in spec["env"]}
    assert env["CLAWPEN_MODEL"] == "gpt-4o" and env["CLAWPEN_AGENT_NAME"] == "finn"
    assert spec["image"] == "clawpen/agent:test"
    assert sts()["metadata"]["ownerReferences"][0]["uid"] == "uid-finn"
    secret = kmock.objects[SECRETS, "default", "agent-finn-secrets"]
    assert base64.b64decode(secret["data"]["OPENAI_API_KEY"]) == b"sk-from-the-store"

    def status() -> dict[str, Any]:
        return dict(kmock.objects[AGENTS, "default", "finn"].get("status") or {})

    await eventually(lambda: status().get("planHash"), what=status)
    # A Normal Event for the action (kopf.info obeyed the operator's WARNING posting level and dropped it).
    await eventually(
        lambda: any(
            e["type"] == "Normal" and e["reason"] == "Created" and e["involvedObject"]["name"] == "finn"
            for e in posted_events(kmock, "Agent")
        ),
        what=lambda: posted_events(kmock, "Agent"),
    )
    # Scaled up, no pod answering yet (kmock runs none): Starting, not Ready, endpoint = the Service.
    assert status()["phase"] == "Starting"
    ready = status()["conditions"][0]
    assert (ready["type"], ready["status"]) == ("Ready", "False")
    assert status()["endpoint"] == "http://agent-finn.default.svc.cluster.local:8080"

    kmock.objects[AGENTS, "default", "finn"].patch({"spec": {"state": "Stopped"}})
    await plane.update_status(Agent, "finn", AgentStatus(phase=status()["phase"]))  # announce the change
    await eventually(lambda: sts()["spec"]["replicas"] == 0, what=lambda: sts()["spec"])
    await eventually(lambda: status().get("phase") == "Stopped", what=status)

    await plane.delete(Agent, "finn")
    await eventually(lambda: sts() is None, what=lambda: sts())


async def test_team_status_follows_its_agents(plane: KubeStore, kmock: kmock.KubernetesEmulator) -> None:
    await seed(kmock, plane, AGENTS, agent("finn"))
    team = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Team",
        "metadata": {"name": "crew"},
        "spec": {"agents": {"books": {"agent": "finn"}, "other": {"agent": "ghost"}}},
    }
    await seed(kmock, plane, TEAMS, team)

    def status() -> dict[str, Any]:
        return dict(kmock.objects[TEAMS, "default", "crew"].get("status") or {})

    await eventually(lambda: status().get("missingAgents") == ["ghost"], what=status)


@pytest.mark.parametrize("outside", [True, False])
async def test_outside_the_cluster_readiness_comes_from_the_pod(kmock: kmock.KubernetesEmulator, outside: bool) -> None:
    """An operator outside the cluster cannot resolve *.svc.cluster.local: it reads the Pod's Ready
    condition (its readinessProbe on /healthz) instead of probing the Service itself."""
    declare(kmock)
    store = KubeStore(api_client_for(str(kmock.url)))
    runtime = KubernetesRuntime(api_client_for(str(kmock.url)), instance="t-op")
    reconciler = Reconciler(
        store,
        runtime,
        load_catalog(REPO_ROOT / "templates"),
        instance="t-op",
        image="clawpen/agent:test",
        secrets=DictSecrets({"OPENAI_API_KEY": b"sk-from-the-store"}),
        environ={},
        runtime_readiness=outside,
    )
    try:
        await seed(kmock, store, AGENTS, agent("finn"))
        await reconciler.reconcile("default/finn")
        template = kmock.objects[STS, "default", "agent-finn"]["spec"]["template"]
        kmock.objects["v1/pods", "default", "agent-finn-0"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "agent-finn-0",
                "namespace": "default",
                "labels": {k: str(v) for k, v in template["metadata"]["labels"].items()},
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "agent", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "restartCount": 0}
                ],
            },
        }
        await reconciler.reconcile("default/finn")
        status = (await store.get(Agent, "finn")).status
        assert status is not None
        ready = status.condition("Ready")
        assert ready is not None
        if outside:
            assert (status.phase.value, ready.status) == ("Running", "True"), status
        else:  # probing the Service name from here fails: what every agent showed before
            assert (ready.status, ready.reason) == ("False", "NotReady"), status
    finally:
        await store.close()
        await runtime.close()




def team_events(server: kmock.KubernetesEmulator, name: str) -> list[dict[str, Any]]:
    return posted_events(server, "Team", name)


async def test_team_problems_become_kubernetes_events_once(plane: KubeStore, kmock: kmock.KubernetesEmulator) -> None:
    """`kubectl describe team` showed no Events: a team routing to a missing agent, or to one that is
    not running, now gets one Warning naming them (not one per status pass), on the Team's uid."""
    await seed(kmock, plane, AGENTS, agent("finn"))
    team = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Team",
        "metadata": {"name": "crew"},
        "spec": {"agents": {"books": {"agent": "finn"}, "other": {"agent": "ghost"}}},
    }
    await seed(kmock, plane, TEAMS, team)
    # Then five more status passes (team_period 0.2 s): nothing new to say.
    events = await settled(lambda: team_events(kmock, "crew"), what=lambda: [r.data for r in kmock])
    assert len(events) == 1, events
    event = events[0]
    assert (event["type"], event["reason"]) == ("Warning", "AgentsUnavailable"), event
    assert "missing agents: ghost" in event["message"] and "agents not running: finn" in event["message"]
    assert event["involvedObject"]["uid"] == "uid-crew" and event["involvedObject"]["namespace"] == "default"


async def test_an_invalid_team_is_failed_with_an_event(plane: KubeStore, kmock: kmock.KubernetesEmulator) -> None:
    """Routing that names an intent the team does not have passes the CRD schema (it cannot express
    the cross-reference) but not the model: the Team was skipped without a word; now it is Failed and
    a Warning Event says why."""
    team = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Team",
        "metadata": {"name": "mixed"},
        "spec": {"agents": {"books": {"agent": "finn"}}, "routing": {"payroll": {"keywords": ["salary"]}}},
    }
    with pytest.raises(InvalidObject):  # stored and announced; only reading it back as a Team fails
        await seed(kmock, plane, TEAMS, team)

    def status() -> dict[str, Any]:
        return dict(kmock.objects[TEAMS, "default", "mixed"].get("status") or {})

    await eventually(lambda: status().get("phase") == "Failed", what=status)
    ready = status()["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "routing.payroll names an intent missing from agents" in ready["message"]
    events = await settled(lambda: team_events(kmock, "mixed"))
    assert len(events) == 1 and events[0]["type"] == "Warning" and events[0]["reason"] == "InvalidSpec", events
    assert "routing.payroll" in events[0]["message"]


async def test_a_team_router_that_cannot_work_is_an_event(plane: KubeStore, kmock: kmock.KubernetesEmulator) -> None:
    """An LLM router naming a provider the catalog lacks silently routed by keywords: now a Warning
    Event on the Team says so (once), and the fix is announced once too."""
    team = {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Team",
        "metadata": {"name": "routed"},
        "spec": {"router": {"mode": "llm", "provider": "nosuch"}, "agents": {"books": {"agent": "finn"}}},
    }
    await seed(kmock, plane, TEAMS, team)

    def router_events() -> list[dict[str, Any]]:
        return [e for e in team_events(kmock, "routed") if e["reason"].startswith("Router")]

    assert len(await settled(router_events, what=lambda: team_events(kmock, "routed"))) == 1, router_events()
    event = router_events()[0]
    assert (event["type"], event["reason"]) == ("Warning", "RouterMisconfigured")
    assert "unknown provider 'nosuch'" in event["message"] and "routes by keywords instead" in event["message"]
    kmock.objects[TEAMS, "default", "routed"].patch({"spec": {"router": {"mode": "keyword", "provider": None}}})
    await plane.update_status(Team, "routed", TeamStatus())  # announce the change
    await settled(lambda: len(router_events()) == 2, what=router_events)
    assert [e["reason"] for e in router_events()] == ["RouterMisconfigured", "RouterConfigured"]
