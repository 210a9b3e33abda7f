"""The secret store against real files: encryption at rest, scoping, names, limits, rotation."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller.secrets import (
    MAX_VALUE_BYTES,
    InvalidSecret,
    SecretCorrupt,
    SecretKeyMismatch,
    SecretNotFound,
    SecretStore,
)

REPO = Path(__file__).resolve().parents[2]
VALUE = b"sk-live-1234567890-very-secret-value"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAWPEN_SECRET_KEY", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path)


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_files_never_contain_the_value(store: SecretStore, tmp_path: Path) -> None:
    store.set("OPENAI_API_KEY", VALUE)
    store.set("OPENAI_API_KEY", VALUE, agent="finn")
    blob = all_bytes(tmp_path)
    assert VALUE not in blob
    assert base64.b64encode(VALUE) not in blob
    assert VALUE.hex().encode() not in blob
    assert store.get("OPENAI_API_KEY") == VALUE
    assert store.get("OPENAI_API_KEY", agent="finn") == VALUE


def test_files_and_key_are_private(store: SecretStore, tmp_path: Path) -> None:
    store.set("K", VALUE, agent="finn")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    files = [p for p in (tmp_path / "secrets").rglob("*.secret")]
    assert files and all(p.stat().st_mode & 0o777 == 0o600 for p in files)


def test_version_changes_on_every_set_and_is_not_derived_from_value(store: SecretStore) -> None:
    first = store.set("K", VALUE)
    second = store.set("K", VALUE)
    assert first.version != second.version
    assert second.created_at == first.created_at
    assert second.size_bytes == len(VALUE)
    other = SecretStore(store.home.parent / "other")
    assert other.set("K", VALUE).version not in (first.version, second.version)


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    SecretStore(tmp_path).set("K", VALUE)
    wrong = SecretStore(tmp_path, key=os.urandom(32))
    with pytest.raises(SecretKeyMismatch, match="secret store key does not match"):
        wrong.get("K")
    with pytest.raises(SecretKeyMismatch):
        wrong.set("OTHER", b"x")  # never mix two keys in one store


def test_wrong_env_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    SecretStore(tmp_path).set("K", VALUE)
    monkeypatch.setenv("CLAWPEN_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(SecretKeyMismatch, match="CLAWPEN_SECRET_KEY"):
        SecretStore(tmp_path).get("K")
    monkeypatch.setenv("CLAWPEN_SECRET_KEY", "not base64!")
    with pytest.raises(Exception, match="CLAWPEN_SECRET_KEY is not valid base64"):
        SecretStore(tmp_path)


def test_env_key_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv("CLAWPEN_SECRET_KEY", base64.b64encode(key).decode())
    SecretStore(tmp_path).set("K", VALUE)
    assert not (tmp_path / "secret.key").exists()
    monkeypatch.delenv("CLAWPEN_SECRET_KEY")
    assert SecretStore(tmp_path / "x", key=key) is not None
    assert SecretStore(tmp_path, key=key).get("K") == VALUE


def test_lost_key_file_is_not_silently_replaced(tmp_path: Path) -> None:
    SecretStore(tmp_path).set("K", VALUE)
    (tmp_path / "secret.key").unlink()
    with pytest.raises(SecretKeyMismatch, match="missing"):
        SecretStore(tmp_path)


def test_rotation_keeps_every_value_and_changes_the_key(store: SecretStore, tmp_path: Path) -> None:
    values = {(f"S{i}", agent): os.urandom(100 + i) for i in range(5) for agent in (None, "a", "b")}
    for (name, agent), value in values.items():
        store.set(name, value, agent=agent)
    before = {(i.name, i.agent): i.version for i in store.list_all()}
    old_key = (tmp_path / "secret.key").read_text()
    old_files = {p: p.read_bytes() for p in (tmp_path / "secrets").rglob("*.secret")}
    store.rotate_key()
    assert (tmp_path / "secret.key").read_text() != old_key
    assert {(i.name, i.agent): i.version for i in store.list_all()} == before  # values unchanged
    for path, old in old_files.items():
        assert path.read_bytes() != old
    fresh = SecretStore(tmp_path)  # a new process reading the rotated key file
    for (name, agent), value in values.items():
        assert fresh.get(name, agent=agent) == value
    with pytest.raises(SecretKeyMismatch):
        SecretStore(tmp_path, key=base64.b64decode(old_key)).get("S0")
    assert not (tmp_path / "secrets.next").exists() and not (tmp_path / "secrets.prev").exists()
    assert not (tmp_path / "secret.key.next").exists()


def test_a_running_store_follows_a_rotation_by_another_process(tmp_path: Path) -> None:
    server = SecretStore(tmp_path)
    server.set("K", VALUE)
    SecretStore(tmp_path).rotate_key()
    assert server.get("K") == VALUE


def test_interrupted_rotation_recovers(tmp_path: Path) -> None:
    """A crash after the directory swap but before the key file swap: the next start completes it."""
    home, crashed = tmp_path / "home", tmp_path / "crashed"
    store = SecretStore(home)
    store.set("K", VALUE)
    new_key = os.urandom(32)
    store.rotate_key(new_key)
    # Rebuild the crash state: new store + key.next present, old key file still in place.
    shutil.copytree(home, crashed)
    (crashed / "secret.key.next").write_text(base64.b64encode(new_key).decode())
    (crashed / "secret.key").write_text(base64.b64encode(os.urandom(32)).decode())
    (crashed / "secret.key").chmod(0o600)
    (crashed / "secret.key.next").chmod(0o600)
    assert SecretStore(crashed).get("K") == VALUE
    assert not (crashed / "secret.key.next").exists()


def test_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    SecretStore(tmp_path).set("K", VALUE)
    (tmp_path / "secret.key").chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        SecretStore(tmp_path)


def test_scoping_agent_b_gets_global_not_agent_a(store: SecretStore) -> None:
    store.set("API_KEY", b"global-value")
    store.set("API_KEY", b"a-own-value", agent="agent-a")
    store.set("ONLY_A", b"a-only", agent="agent-a")
    got_b = store.resolve("agent-b", ["API_KEY", "ONLY_A", "MISSING", "../ONLY_A"])
    assert set(got_b) == {"API_KEY"}
    assert got_b["API_KEY"].scope == "global"
    assert store.read(got_b["API_KEY"]) == b"global-value"
    got_a = store.resolve("agent-a", ["API_KEY", "ONLY_A"])
    assert got_a["API_KEY"].scope == "agent" and got_a["API_KEY"].agent == "agent-a"
    assert store.read(got_a["API_KEY"]) == b"a-own-value"
    assert store.read(got_a["ONLY_A"]) == b"a-only"
    with pytest.raises(SecretNotFound):
        store.get("ONLY_A", agent="agent-b")
    with pytest.raises(SecretNotFound):
        store.get("ONLY_A")  # exact scope: agent A's is not global


def test_file_moved_between_agents_fails_to_decrypt(store: SecretStore, tmp_path: Path) -> None:
    store.set("API_KEY", b"a-own-value", agent="agent-a")
    store.set("API_KEY", b"b-own-value", agent="agent-b")
    a = tmp_path / "secrets" / "agent" / "agent-a" / "API_KEY.secret"
    b = tmp_path / "secrets" / "agent" / "agent-b" / "API_KEY.secret"
    shutil.copy(a, b)
    with pytest.raises(SecretCorrupt, match="failed authentication") as err:
        store.get("API_KEY", agent="agent-b")
    assert b"a-own-value".decode() not in str(err.value)


def test_tampered_ciphertext_is_refused(store: SecretStore, tmp_path: Path) -> None:
    store.set("K", VALUE)
    path = tmp_path / "secrets" / "global" / "K.secret"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(SecretCorrupt):
        store.get("K")


def test_read_refuses_a_stale_version(store: SecretStore) -> None:
    info = store.set("K", VALUE)
    store.set("K", b"newer")
    with pytest.raises(SecretNotFound, match="changed since"):
        store.read(info)


@pytest.mark.parametrize(
    "name", ["../etc", "..", ".", "a/b", "a..b", "", "x" * 65, "sp ace", "ü", "a\0b", "/abs"]
)
def test_bad_names_refused(store: SecretStore, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidSecret, match=r"\[A-Za-z0-9_\.-\]\{1,64\}") as err:
        store.set(name, VALUE)
    assert err.value.status == 422
    with pytest.raises(InvalidSecret):
        store.get(name)
    assert not [p for p in tmp_path.rglob("*.secret")]


def test_bad_agent_names_refused(store: SecretStore) -> None:
    for agent in ("../x", "A", "a/b", ""):
        with pytest.raises(InvalidSecret, match="DNS-1123"):
            store.set("K", VALUE, agent=agent)


def test_value_limit(store: SecretStore) -> None:
    assert store.set("BIG", b"x" * MAX_VALUE_BYTES).size_bytes == 65536
    with pytest.raises(InvalidSecret, match="64 KiB") as err:
        store.set("BIG", b"x" * (MAX_VALUE_BYTES + 1))
    assert err.value.status == 422
    with pytest.raises(InvalidSecret, match="empty"):
        store.set("E", b"")
    assert store.get("BIG") == b"x" * MAX_VALUE_BYTES


def test_list_and_delete(store: SecretStore) -> None:
    store.set("B", b"1")
    store.set("A", b"22")
    store.set("C", b"333", agent="finn")
    assert [(i.name, i.size_bytes) for i in store.list()] == [("A", 2), ("B", 1)]
    assert [i.name for i in store.list("finn")] == ["C"]
    assert {(i.name, i.scope) for i in store.list_all()} == {("A", "global"), ("B", "global"), ("C", "agent")}
    stamp = store.stamp()
    store.delete("A")
    assert store.stamp() != stamp
    with pytest.raises(SecretNotFound, match="'A' \\(global\\) not found") as err:
        store.delete("A")
    assert err.value.status == 404
    assert store.delete_agent("finn") == 1
    assert store.list("finn") == []


def run_cli(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CLAWPEN_HOME": str(home)}
    env.pop("CLAWPEN_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "secrets", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def test_cli_set_list_delete_rotate(tmp_path: Path) -> None:
    out = run_cli(tmp_path, "set", "OPENAI_API_KEY", "--agent", "finn", stdin=VALUE + b"\n")
    assert out.returncode == 0, out.stderr
    assert VALUE not in out.stdout + out.stderr
    assert SecretStore(tmp_path).get("OPENAI_API_KEY", agent="finn") == VALUE  # trailing newline dropped
    assert run_cli(tmp_path, "set", "RAW", "--raw", stdin=b"a\n").returncode == 0
    assert SecretStore(tmp_path).get("RAW") == b"a\n"
    listing = run_cli(tmp_path, "list", "--all")
    assert listing.returncode == 0 and b"OPENAI_API_KEY" in listing.stdout and b"finn" in listing.stdout
    assert VALUE not in listing.stdout
    assert run_cli(tmp_path, "rotate-key").returncode == 0
    assert SecretStore(tmp_path).get("OPENAI_API_KEY", agent="finn") == VALUE
    assert run_cli(tmp_path, "delete", "OPENAI_API_KEY", "--agent", "finn").returncode == 0
    gone = run_cli(tmp_path, "delete", "OPENAI_API_KEY", "--agent", "finn")
    assert gone.returncode == 1 and b"not found" in gone.stderr


def test_cli_never_takes_the_value_as_an_argument(tmp_path: Path) -> None:
    out = run_cli(tmp_path, "set", "K", VALUE.decode(), stdin=b"")
    assert out.returncode != 0
    assert not list(tmp_path.rglob("*.secret"))


def test_cli_bad_name_and_empty_value(tmp_path: Path) -> None:
    bad = run_cli(tmp_path, "set", "../evil", stdin=b"v")
    assert bad.returncode == 1 and b"secret names match" in bad.stderr
    empty = run_cli(tmp_path, "set", "K", stdin=b"")
    assert empty.returncode == 1 and b"empty" in empty.stderr


async def test_changes_reports_writes_from_any_process(tmp_path: Path) -> None:
    watcher = SecretStore(tmp_path)
    stream = watcher.changes(interval=0.01)
    waiting = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    SecretStore(tmp_path).set("K", VALUE)  # another store instance, as the CLI would be
    stamp = await asyncio.wait_for(waiting, timeout=10)
    assert stamp == watcher.stamp() != ""
    await stream.aclose()


def test_cli_rotate_with_env_key_needs_the_new_key(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    new_key = base64.b64encode(os.urandom(32)).decode()
    env = {**os.environ, "CLAWPEN_HOME": str(tmp_path), "CLAWPEN_SECRET_KEY": key}
    run = [sys.executable, "-m", "controller.cli", "secrets"]
    assert subprocess.run([*run, "set", "K"], input=b"v", env=env, cwd=REPO, timeout=60).returncode == 0
    refused = subprocess.run([*run, "rotate-key"], env=env, cwd=REPO, capture_output=True, timeout=60)
    assert refused.returncode == 1 and b"--new-key-stdin" in refused.stderr
    rotated = subprocess.run(
        [*run, "rotate-key", "--new-key-stdin"], input=new_key.encode(), env=env, cwd=REPO, capture_output=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert new_key.encode() not in rotated.stdout + rotated.stderr
    assert SecretStore(tmp_path, key=base64.b64decode(new_key)).get("K") == b"v"
    assert not (tmp_path / "secret.key").exists()
