"""The audit line of a mutating request is on disk before its caller has the answer: a client that reads
the audit log right after a request finished must find it (it was written just after the response, and
a loaded machine showed the race: tests/api/test_users.py missed a DELETE)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.middleware import AuditTrail
from controller.users.audit import AuditLog
from tests.api.harness import ServerThread


class SlowAuditLog(AuditLog):
    """The real audit log, on a disk that takes its time."""

    def record(self, **fields: object) -> None:  # type: ignore[override]
        time.sleep(0.3)
        super().record(**fields)  # type: ignore[arg-type]


async def delete_thing(request: Request) -> Response:
    request.scope["clawpen.route"] = "/things/{id}"
    request.scope["clawpen.object"] = request.path_params["id"]
    return Response(status_code=204)


def test_the_audit_line_is_written_before_the_answer_is_complete(tmp_path: Path) -> None:
    audit = SlowAuditLog(tmp_path)
    app = Starlette(routes=[Route("/things/{id}", delete_thing, methods=["DELETE"])])
    server = ServerThread(AuditTrail(app, audit=audit)).start()  # real HTTP: the answer can beat the log
    try:
        assert httpx.delete(f"{server.url}/things/a1").status_code == 204
        entries = audit.query()  # at once, as a client reading the audit log would
    finally:
        server.stop()
    assert [(e["method"], e["route"], e["object"], e["status"]) for e in entries] == [
        ("DELETE", "/things/{id}", "a1", 204)]
