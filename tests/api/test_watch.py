"""GET /api/watch over a real server and file store: snapshot, live events, resume, auth.

The controller is not running: a test writes status the way the controller does
(store.update_status on the server's loop), which is exactly the write the watch must deliver.
The issue asks for events within a second of the write. On an idle machine they take ~60 ms
(bench/watch_cost.py: p50 58 ms, p95 71 ms); EVENT_DEADLINE leaves room for a CI machine busy with
other suites, and still fails for anything that re-lists on a timer of a few seconds.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from controller.resources import Agent, AgentStatus, Condition, Phase
from tests.api.harness import ServerThread

EVENT_DEADLINE = 3.0  # seconds from the write returning to the event arriving (target: 1 s, issue 13)


class Stream:
    """An SSE client in a thread: parsed events go to a queue, in order."""

    # A short heartbeat lets close() end the reader promptly (it notices between two lines), so a
    # test's server shuts down without waiting for open streams.
    def __init__(
        self, url: str, token: str | None, last_event_id: str | None = None, params: str = "?heartbeat=0.3"
    ) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self._stop = threading.Event()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(f"{url}/api/watch{params}", headers), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "no answer from /api/watch"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=None)) as answer:
                self.status, self.headers = answer.status_code, dict(answer.headers)
                if answer.status_code != 200:
                    self.body = answer.read()
                    return
                self._ready.set()
                block: dict[str, Any] = {}
                for line in answer.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if "event" in block:
                            block["data"] = json.loads(block["data"]) if "data" in block else None
                            self.events.put(block)
                        elif block.get("comment"):
                            self.events.put({"event": "comment", "data": block["comment"]})
                        block = {}
                    elif line.startswith(":"):
                        block["comment"] = line[1:].strip()
                    else:
                        key, _, value = line.partition(":")
                        block[key] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self._ready.set()

    def next(self, timeout: float = 10, skip_comments: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event within {timeout} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                raise AssertionError(f"no event within {timeout} s") from None
            if skip_comments and event["event"] == "comment":
                continue
            return event

    def until(self, kind: str, timeout: float = 10) -> list[dict[str, Any]]:
        seen = []
        while True:
            event = self.next(timeout)
            seen.append(event)
            if event["event"] == kind:
                return seen

    def for_agent(self, name: str, timeout: float, want: str | None = None) -> dict[str, Any]:
        """The next event about agent `name` (of type `want`), skipping team re-renders."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.001, deadline - time.monotonic()))
            data = event["data"] or {}
            if data.get("kind") == "agents" and data.get("name") == name and (want is None or event["event"] == want):
                return event

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def stream(gateway: ServerThread, tokens: dict[str, Any]) -> Iterator[Stream]:
    s = Stream(gateway.url, tokens["access_token"])
    yield s
    s.close()


def _store(gateway: ServerThread) -> Any:
    return gateway.app.state.deps.store


def test_refused_without_a_token(gateway: ServerThread) -> None:
    s = Stream(gateway.url, None)
    assert s.status == 401
    assert json.loads(s.body)["error"]
    bad = Stream(gateway.url, "not-a-token")
    assert bad.status == 401


def test_unknown_kind_is_a_422_on_kinds(gateway: ServerThread, client: httpx.Client) -> None:
    answer = client.get("/api/watch", params={"kinds": "agents,pods"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "kinds"


def test_snapshot_then_create_status_change_delete(gateway: ServerThread, client: httpx.Client, stream: Stream) -> None:
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert client.post("/api/agents", json={"name": "before", "state": "stopped"}).status_code == 201
    stream.until("SYNCED")  # the snapshot (maybe holding "before") is complete

    started = time.monotonic()
    created = client.post("/api/agents", json={"name": "w1", "config": {"llm_provider": "ollama"}})
    assert created.status_code == 201
    added = stream.for_agent("w1", EVENT_DEADLINE + (time.monotonic() - started))
    assert added["event"] == "ADDED"
    assert added["data"]["object"] == client.get("/api/agents/w1").json()  # exactly the REST rendering
    assert added["data"]["resourceVersion"] == created.json()["resource_version"]
    assert added["id"]

    status = AgentStatus(
        phase=Phase.RUNNING,
        endpoint="http://127.0.0.1:1",
        conditions=[Condition(type="Ready", status="True", reason="Healthy", message="ok")],
    )
    gateway.call(_store(gateway).update_status(Agent, "w1", status))
    started = time.monotonic()
    modified = stream.for_agent("w1", EVENT_DEADLINE, "MODIFIED")
    assert time.monotonic() - started <= EVENT_DEADLINE
    obj = modified["data"]["object"]
    assert obj["status"] == "running" and obj["endpoint"] == "http://127.0.0.1:1"
    assert obj["conditions"][0]["reason"] == "Healthy"
    assert modified["data"]["resourceVersion"] == obj["resource_version"] != added["data"]["resourceVersion"]

    started = time.monotonic()
    assert client.delete("/api/agents/w1").status_code == 204
    deleted = stream.for_agent("w1", EVENT_DEADLINE + (time.monotonic() - started), "DELETED")
    assert deleted["data"]["name"] == "w1"


def test_resume_with_last_event_id_replays_only_what_was_missed(
    gateway: ServerThread, client: httpx.Client, tokens: dict[str, Any]
) -> None:
    first = Stream(gateway.url, tokens["access_token"])
    synced = first.until("SYNCED")[-1]
    last_id = synced["id"]
    first.close()

    assert client.post("/api/agents", json={"name": "missed", "state": "stopped"}).status_code == 201
    gateway.call(_store(gateway).update_status(Agent, "missed", AgentStatus(phase=Phase.STOPPED)))
    # Wait until the hub has seen both changes (a live stream shows the status), then resume.
    live = Stream(gateway.url, tokens["access_token"])
    while live.for_agent("missed", 10)["data"]["object"]["status"] != "stopped":
        pass
    live.close()

    resumed = Stream(gateway.url, tokens["access_token"], last_event_id=last_id)
    replay = resumed.until("SYNCED")
    resumed.close()
    assert replay[-1]["data"]["resumed"] is True
    about = [(e["event"], e["data"]["name"]) for e in replay[:-1] if e["data"]["kind"] == "agents"]
    assert about and all(name == "missed" for _, name in about)  # nothing already seen is sent again
    assert about[0][0] == "ADDED"
    assert [e for e in replay[:-1] if e["data"]["kind"] == "agents"][-1]["data"]["object"]["status"] == "stopped"
    ids = [e["id"] for e in replay[:-1]]
    assert ids == sorted(ids, key=lambda i: int(i.rsplit("-", 1)[1]))


def test_an_id_that_cannot_be_resumed_gets_reset_and_a_snapshot(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    s = Stream(gateway.url, tokens["access_token"], last_event_id="ffffffff-3")
    events = s.until("SYNCED")
    s.close()
    assert events[0]["event"] == "RESET"
    assert events[-1]["data"]["resumed"] is False


def test_heartbeat_comments_keep_an_idle_stream_open(gateway: ServerThread, tokens: dict[str, Any]) -> None:
    s = Stream(gateway.url, tokens["access_token"], params="?kinds=teams&heartbeat=0.2")
    s.until("SYNCED")
    assert s.next(timeout=5, skip_comments=False) == {"event": "comment", "data": "ping"}
    s.close()


def test_a_member_status_change_re_renders_its_team(
    gateway: ServerThread, client: httpx.Client, stream: Stream
) -> None:
    """A team's REST form carries a status derived from its agents: their changes are team events."""
    from controller.resources import ObjectMeta, Team, TeamIntent, TeamSpec

    spec = TeamSpec(agents={"help": TeamIntent(agent="member", description="helps")})
    gateway.call(_store(gateway).create(Team(metadata=ObjectMeta(name="crew"), spec=spec)))
    assert client.post("/api/agents", json={"name": "member", "state": "stopped"}).status_code == 201

    def team_event(not_running: list[str]) -> dict[str, Any]:
        while True:
            event = stream.next(10)
            data = event["data"] or {}
            if data.get("kind") == "teams" and data.get("name") == "crew":
                status = data["object"]["status"]
                if status["missing_agents"] == [] and status["not_running_agents"] == not_running:
                    return event

    team_event(["member"])  # exists, not running yet
    running = AgentStatus(phase=Phase.RUNNING, endpoint="http://127.0.0.1:1")
    gateway.call(_store(gateway).update_status(Agent, "member", running))
    event = team_event([])
    assert event["data"]["object"] == client.get("/api/teams/crew").json()
