"""Placeholder agent program (stdlib only): /healthz and a chat route that says it is not ready.

Replaced by the real program (agent/app.py) in the agent-program issue; the image contract stays:
`python -m agent` listens on 0.0.0.0:$CLAWPEN_AGENT_PORT (default 8080).
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/healthz":
            self._send(200, {"status": "ok", "agent": os.environ.get("CLAWPEN_AGENT_NAME", "")})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        self._send(501, {"error": "chat is not implemented in the placeholder agent"})


def main() -> None:
    port = int(os.environ.get("CLAWPEN_AGENT_PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
