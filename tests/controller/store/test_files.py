"""FileStore CRUD semantics on a real directory: the Kubernetes API rules of store/base.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from store_helpers import agent, manifest

from controller.resources import Agent, AgentStatus, Condition, Phase, Team, TeamSpec, TeamStatus, now
from controller.store.base import Conflict, InvalidObject, NotFound
from controller.store.files import FileStore, NamespaceNotSupported


def spec_file(home: Path, name: str, plural: str = "agents") -> Path:
    return home / plural / f"{name}.yaml"


def no_temp_files(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.name.endswith(".tmp")]


async def test_create_sets_server_fields_and_get_returns_them(store: FileStore, home: Path) -> None:
    created = await store.create(agent("finn", provider="openai", model="gpt-4o"))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.generation == 1
    assert created.metadata.creation_timestamp is not None
    got = await store.get(Agent, "finn")
    assert got.spec.model == "gpt-4o"
    assert got.metadata.uid == created.metadata.uid
    assert got.metadata.resource_version == created.metadata.resource_version
    assert got.status is None


async def test_spec_file_holds_only_user_fields(store: FileStore, home: Path) -> None:
    obj = agent("finn", model="m")
    obj.metadata.labels = {"team": "finance"}
    obj.status = AgentStatus(phase=Phase.RUNNING)  # ignored on create
    created = await store.create(obj)
    assert created.status is None
    doc = yaml.safe_load(spec_file(home, "finn").read_text())
    assert doc == {
        "apiVersion": "clawpen.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "finn", "labels": {"team": "finance"}},
        "spec": {"model": "m"},
    }
    await store.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    assert "status" not in yaml.safe_load(spec_file(home, "finn").read_text())


async def test_create_existing_name_is_a_conflict(store: FileStore) -> None:
    await store.create(agent("finn"))
    with pytest.raises(Conflict) as err:
        await store.create(agent("finn", model="other"))
    assert err.value.status == 409 and "finn" in str(err.value)


async def test_replace_with_stale_resource_version_is_a_conflict(store: FileStore) -> None:
    first = await store.create(agent("finn", model="a"))
    second = first.model_copy(deep=True)
    first.spec.model = "b"
    await store.replace(first)
    second.spec.model = "c"
    with pytest.raises(Conflict) as err:
        await store.replace(second)
    assert "stale" in str(err.value)
    assert (await store.get(Agent, "finn")).spec.model == "b"


async def test_replace_without_resource_version_is_unconditional(store: FileStore) -> None:
    await store.create(agent("finn", model="a"))
    replaced = await store.replace(agent("finn", model="z"))  # as `clawpen apply` does
    assert replaced.spec.model == "z" and replaced.metadata.generation == 2


async def test_replace_of_a_missing_object_is_not_found(store: FileStore) -> None:
    with pytest.raises(NotFound):
        await store.replace(agent("ghost"))


async def test_generation_bumps_only_when_the_spec_changes(store: FileStore, home: Path) -> None:
    created = await store.create(agent("finn", model="a"))
    same = await store.replace(created)
    assert same.metadata.generation == 1
    assert same.metadata.resource_version == created.metadata.resource_version  # a no-op write

    relabeled = same.model_copy(deep=True)
    relabeled.metadata.labels = {"x": "y"}
    relabeled = await store.replace(relabeled)
    assert relabeled.metadata.generation == 1
    assert relabeled.metadata.resource_version != same.metadata.resource_version

    relabeled.spec.model = "b"
    changed = await store.replace(relabeled)
    assert changed.metadata.generation == 2
    assert (await store.get(Agent, "finn")).metadata.generation == 2


async def test_update_status_keeps_spec_file_and_generation(store: FileStore, home: Path) -> None:
    created = await store.create(agent("finn", model="a"))
    before = spec_file(home, "finn").read_bytes()
    status = AgentStatus(
        phase=Phase.RUNNING,
        observed_generation=1,
        endpoint="http://127.0.0.1:49153",
        started_at=now(),
        conditions=[Condition(type="Ready", status="True", reason="Running", last_transition_time=now())],
    )
    updated = await store.update_status(Agent, "finn", status)
    assert spec_file(home, "finn").read_bytes() == before
    assert updated.metadata.generation == 1
    assert updated.metadata.resource_version != created.metadata.resource_version
    got = await store.get(Agent, "finn")
    assert got.status is not None and got.status.endpoint == "http://127.0.0.1:49153"
    assert got.status.condition("Ready") is not None
    again = await store.update_status(Agent, "finn", status)  # the same status: a no-op
    assert again.metadata.resource_version == updated.metadata.resource_version


async def test_status_in_replace_input_is_ignored(store: FileStore) -> None:
    await store.create(agent("finn"))
    await store.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    current = await store.get(Agent, "finn")
    current.status = AgentStatus(phase=Phase.FAILED, message="forged")
    current.spec.model = "new"
    replaced = await store.replace(current)
    assert replaced.status is not None and replaced.status.phase == Phase.RUNNING


async def test_hand_edit_bumps_generation_lazily(store: FileStore, home: Path) -> None:
    created = await store.create(agent("finn", provider="openai", model="a"))
    spec_file(home, "finn").write_text(manifest("finn", model="edited"))
    got = await store.get(Agent, "finn")
    assert got.spec.model == "edited"
    assert got.metadata.generation == 2
    assert got.metadata.uid == created.metadata.uid
    assert got.metadata.resource_version != created.metadata.resource_version
    again = await store.get(Agent, "finn")
    assert again.metadata.generation == 2 and again.metadata.resource_version == got.metadata.resource_version


async def test_reformatting_changes_resource_version_not_generation(store: FileStore, home: Path) -> None:
    spec_file(home, "finn").write_text(manifest("finn"))
    first = await store.get(Agent, "finn")
    spec_file(home, "finn").write_text("# a comment\n" + manifest("finn").replace("  model", "  model "))
    second = await store.get(Agent, "finn")
    assert second.metadata.generation == first.metadata.generation == 1
    assert second.metadata.resource_version != first.metadata.resource_version


async def test_stale_resource_version_after_hand_edit_is_a_conflict(store: FileStore, home: Path) -> None:
    created = await store.create(agent("finn", provider="openai", model="a"))
    spec_file(home, "finn").write_text(manifest("finn", model="by-hand"))
    created.spec.model = "by-api"
    with pytest.raises(Conflict):
        await store.replace(created)
    assert (await store.get(Agent, "finn")).spec.model == "by-hand"


async def test_hand_written_file_is_adopted(store: FileStore, home: Path) -> None:
    spec_file(home, "nova").write_text(
        manifest("nova") + "status:\n  phase: Running\n"  # status in a spec file is ignored
    )
    adopted = await store.get(Agent, "nova")
    assert adopted.metadata.uid and adopted.metadata.generation == 1
    assert adopted.status is None
    assert (await store.get(Agent, "nova")).metadata.uid == adopted.metadata.uid
    assert [a.name for a in await store.list(Agent)] == ["nova"]


async def test_server_fields_in_a_spec_file_are_not_trusted(store: FileStore, home: Path) -> None:
    text = manifest("nova").replace(
        "  name: nova\n", "  name: nova\n  uid: forged\n  generation: 99\n  resourceVersion: '7'\n"
    )
    spec_file(home, "nova").write_text(text)
    got = await store.get(Agent, "nova")
    assert got.metadata.uid != "forged" and got.metadata.generation == 1


BROKEN_FILES = {
    "bad YAML": ("kind: Agent\nmetadata: [unclosed\n", "invalid YAML"),
    "not a mapping": ("- just\n- a list\n", "must be a mapping"),
    "empty": ("", "empty"),
    "invalid field": (manifest("bad", extra="  resources: {memoryMB: 0}\n"), "spec.resources.memoryMB"),
    "unknown field": (manifest("bad", extra="  colour: blue\n"), "spec.colour"),
    "name mismatch": (manifest("other"), "metadata.name"),
    "wrong kind": (manifest("bad").replace("kind: Agent", "kind: Team"), "kind: must be Agent"),
    "other namespace": (manifest("bad").replace("name: bad", "name: bad\n  namespace: prod"), "namespace"),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
async def test_corrupt_file_is_reported_others_keep_working(store: FileStore, home: Path, case: str) -> None:
    text, problem = BROKEN_FILES[case]
    await store.create(agent("good"))
    spec_file(home, "bad").write_text(text)

    with pytest.raises(InvalidObject) as err:
        await store.get(Agent, "bad")
    assert err.value.status == 422
    assert str(spec_file(home, "bad")) in err.value.message and problem in err.value.message

    assert [a.name for a in await store.list(Agent)] == ["good"]
    broken = await store.list_broken(Agent)
    assert [(b.name, b.path) for b in broken] == [("bad", str(spec_file(home, "bad")))]
    assert problem in broken[0].error
    assert (await store.get(Agent, "good")).name == "good"


async def test_update_status_on_a_broken_object_works(store: FileStore, home: Path) -> None:
    spec_file(home, "bad").write_text("spec: [\n")
    before = spec_file(home, "bad").read_bytes()
    status = AgentStatus(phase=Phase.FAILED, message="invalid YAML")
    written = await store.update_status(Agent, "bad", status)
    assert written.name == "bad" and written.status is not None and written.status.phase == Phase.FAILED
    assert spec_file(home, "bad").read_bytes() == before
    recorded = await store.get_status(Agent, "bad")
    assert isinstance(recorded, AgentStatus) and recorded.message == "invalid YAML"

    # Fixed by hand: the object becomes readable, with a generation that says "new spec".
    spec_file(home, "bad").write_text(manifest("bad"))
    fixed = await store.get(Agent, "bad")
    assert fixed.metadata.uid == written.metadata.uid
    assert fixed.metadata.generation == 2
    assert fixed.status is not None and fixed.status.phase == Phase.FAILED


async def test_replace_fixes_broken_object_only_without_rv(store: FileStore, home: Path) -> None:
    spec_file(home, "bad").write_text("spec: [\n")
    stale = agent("bad")
    stale.metadata.resource_version = "1"
    with pytest.raises(Conflict):
        await store.replace(stale)
    fixed = await store.replace(agent("bad", model="ok"))
    assert fixed.spec.model == "ok"
    assert await store.list_broken(Agent) == []


async def test_delete_removes_both_files_also_for_a_broken_object(store: FileStore, home: Path) -> None:
    await store.create(agent("finn"))
    await store.update_status(Agent, "finn", AgentStatus(phase=Phase.RUNNING))
    spec_file(home, "Bad_Name").write_text("{")
    spec_file(home, "with space").write_text(manifest("with space"))
    await store.update_status(Agent, "Bad_Name", AgentStatus(phase=Phase.FAILED))
    broken = await store.list_broken(Agent)
    assert [b.name for b in broken] == ["Bad_Name", "with space"]
    assert "DNS-1123" in broken[1].error
    await store.delete(Agent, "with space")

    await store.delete(Agent, "finn")
    await store.delete(Agent, "Bad_Name")
    with pytest.raises(NotFound):
        await store.get(Agent, "finn")
    with pytest.raises(NotFound):
        await store.delete(Agent, "finn")
    leftovers = sorted(p.name for p in (home / "agents").iterdir()) + sorted(
        p.name for p in (home / ".state" / "agents").iterdir()
    )
    assert leftovers == []


async def test_delete_then_create_is_a_new_object(store: FileStore) -> None:
    first = await store.create(agent("finn"))
    await store.delete(Agent, "finn")
    second = await store.create(agent("finn"))
    assert second.metadata.uid != first.metadata.uid
    assert second.metadata.resource_version != first.metadata.resource_version
    with pytest.raises(Conflict):  # the old incarnation's resourceVersion never matches the new one
        await store.replace(first)


async def test_single_namespace(store: FileStore) -> None:
    obj = agent("finn")
    obj.metadata.namespace = "prod"
    with pytest.raises(NamespaceNotSupported, match="single namespace"):
        await store.create(obj)
    with pytest.raises(NamespaceNotSupported):
        await store.get(Agent, "finn", "prod")
    with pytest.raises(NamespaceNotSupported):
        await store.list(Agent, "prod")
    assert await store.list(Agent, "default") == []


@pytest.mark.parametrize("name", ["../escape", "..", ".state", "a/b", "", ".hidden", "a\\b", "x\0"])
async def test_names_never_leave_the_directory(store: FileStore, name: str) -> None:
    with pytest.raises(NotFound):
        await store.get(Agent, name)
    with pytest.raises(NotFound):
        await store.delete(Agent, name)


async def test_teams_are_stored_apart_from_agents(store: FileStore, home: Path) -> None:
    team = Team.model_validate(
        {
            "metadata": {"name": "finance"},
            "spec": {"description": "money", "agents": {"ledger": {"agent": "finn", "description": "books"}}},
        }
    )
    created = await store.create(team)
    assert spec_file(home, "finance", "teams").exists()
    got = await store.get(Team, "finance")
    assert isinstance(got.spec, TeamSpec) and got.spec.agents["ledger"].agent == "finn"
    await store.update_status(Team, "finance", TeamStatus(phase="Ready"))
    assert (await store.get(Team, "finance")).status == TeamStatus(phase="Ready")
    assert await store.list(Agent) == [] and created.metadata.generation == 1
    with pytest.raises(TypeError):
        await store.update_status(Team, "finance", AgentStatus())  # type: ignore[arg-type]


async def test_no_temp_files_are_left_and_stale_ones_are_swept(store: FileStore, home: Path) -> None:
    for i in range(5):
        await store.create(agent(f"a{i}"))
        await store.update_status(Agent, f"a{i}", AgentStatus(phase=Phase.RUNNING))
        await store.replace(agent(f"a{i}", model="x"))
    assert no_temp_files(home) == []
    crashed = home / "agents" / ".a0.yaml.k2j_9xq1.tmp"  # what a writer killed mid-write leaves
    crashed.write_text("partial")
    users_own = home / "agents" / ".notes.tmp"  # not ours: never swept
    users_own.write_text("keep me")
    assert [a.name for a in await store.list(Agent)] == [f"a{i}" for i in range(5)]
    FileStore(home)
    assert no_temp_files(home) == [users_own]
