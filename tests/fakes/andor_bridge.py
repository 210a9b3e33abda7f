"""A stand-in for the AndOR bridge (an outside service that cannot run here): exactly its agent
registration API, recording every call, with a switch that makes it answer 503 like a bridge that
is down."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeAndorBridge:
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, agent_id)
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def register(request: Request) -> Response:
            body = await request.json()
            with self.lock:
                self.calls.append(("POST", str(body.get("agent_id"))))
                if self.down:
                    return JSONResponse({"error": "bridge down"}, status_code=503)
                missing = {"agent_id", "display_name", "triggers"} - set(body)
                if missing:
                    return JSONResponse({"error": f"missing {sorted(missing)}"}, status_code=422)
                self.agents[body["agent_id"]] = body
            return JSONResponse(body, status_code=201)

        async def unregister(request: Request) -> Response:
            ident = request.path_params["agent_id"]
            with self.lock:
                self.calls.append(("DELETE", ident))
                if self.down:
                    return JSONResponse({"error": "bridge down"}, status_code=503)
                if self.agents.pop(ident, None) is None:
                    return JSONResponse({"error": "not found"}, status_code=404)
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/agents", register, methods=["POST"]),
                Route("/agents/{agent_id}", unregister, methods=["DELETE"]),
            ]
        )

    def count(self, method: str, ident: str) -> int:
        with self.lock:
            return sum(1 for m, i in self.calls if m == method and i == ident)
