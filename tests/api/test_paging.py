"""limit / continue on GET /api/agents and /api/teams: pages cover the list exactly once, in order."""

from __future__ import annotations

import httpx


def _all_pages(client: httpx.Client, path: str, limit: int, **params: str) -> list[list[str]]:
    pages: list[list[str]] = []
    query: dict[str, str] = {"limit": str(limit), **params}
    while True:
        answer = client.get(path, params=query)
        assert answer.status_code == 200, answer.text
        pages.append([item["id"] for item in answer.json()])
        token = answer.headers.get("x-continue")
        if not token:
            assert "link" not in answer.headers
            return pages
        assert answer.headers["link"].endswith('>; rel="next"') and f"continue={token}" in answer.headers["link"]
        query["continue"] = token


def test_agents_in_pages(client: httpx.Client) -> None:
    names = [f"page-{i:02d}" for i in range(7)]
    for name in names:
        body = {"name": name, "project": "paged", "state": "stopped"}
        assert client.post("/api/agents", json=body).status_code == 201
    pages = _all_pages(client, "/api/agents", 3, project="paged")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [n for p in pages for n in p] == names
    # Without limit: everything at once, no continue header (the seed's plain array).
    whole = client.get("/api/agents", params={"project": "paged"})
    assert [a["id"] for a in whole.json()] == names and "x-continue" not in whole.headers
    # An object deleted between pages shifts nothing already served.
    first = client.get("/api/agents", params={"project": "paged", "limit": "2"})
    assert client.delete("/api/agents/page-02").status_code == 204
    rest = client.get("/api/agents", params={"project": "paged", "continue": first.headers["x-continue"]})
    assert [a["id"] for a in rest.json()] == names[3:]


def test_teams_in_pages(client: httpx.Client) -> None:
    everything = [t["id"] for t in client.get("/api/teams").json()]
    pages = _all_pages(client, "/api/teams", 1)
    assert [n for p in pages for n in p] == everything


def test_bad_limit_and_continue_are_422_on_their_field(client: httpx.Client) -> None:
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"continue": "%%%"}, "continue")):
        answer = client.get("/api/agents", params=params)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["field"] == field
