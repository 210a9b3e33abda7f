"""`clawpen chat team/NAME`: a routed team chat in the terminal, through the gateway's WebSocket.

Routing (keyword, LLM, hybrid), clarifying questions and sticky sessions live in the gateway
(api/routes/teams.py); this is a client of `WS /api/teams/NAME/chat` and prints its frames: the
welcome, "→ agent" for each routing decision, the chosen agent's streamed answer, a clarifying
question with its numbered options (answer with a number or a name), errors. Every turn ends with
a frame carrying `done: true` (or an error).

Where the gateway is: the presence record `clawpen up` leaves in the home (or --gateway URL). The
token: --token / CLAWPEN_TOKEN, else a five-minute admin token minted from the home's signing key —
whoever can read the home is the admin already (like kubectl with an admin kubeconfig).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import quote

from controller import presence
from controller.cli import CommandError
from controller.commands._common import settings

LOCAL_TOKEN_SECONDS = 300


def gateway_url(explicit: str | None) -> str:
    if explicit:
        return explicit.rstrip("/")
    cfg = settings()
    gateway = presence.read(cfg.home, "gateway")
    if gateway is None or not gateway.url:
        raise CommandError(
            f"no gateway is running for {cfg.home}: team chat goes through the gateway's router; "
            "start it with `clawpen up` (or pass --gateway URL)"
        )
    return gateway.url


def access_token(explicit: str | None) -> str:
    token = explicit or os.environ.get("CLAWPEN_TOKEN")
    if token:
        return token
    from api.auth import AdminPassword, RefreshLedger, TokenIssuer, load_signing_key

    home = settings().home
    admin = AdminPassword(home)
    issuer = TokenIssuer(
        load_signing_key(home), RefreshLedger(home), access_ttl=LOCAL_TOKEN_SECONDS, password_version=admin.fingerprint
    )
    return issuer.issue().access_token


def _print_frame(frame: dict[str, Any], tty: bool) -> bool:
    """Show one frame; True when it ends the turn."""
    kind = frame.get("type")
    if kind == "welcome":
        print(frame.get("content", ""), file=sys.stderr)
        return False
    if kind == "routing":
        c = frame.get("classification") or {}
        print(f"→ {frame.get('routing_to')} ({c.get('intent')}, {c.get('method')}, {c.get('confidence')})",
              file=sys.stderr)
        return False
    if kind == "clarification":
        print(frame.get("content", ""))
        picks = [f"{i}={o.get('intent')} ({o.get('agent')})" for i, o in enumerate(frame.get("options") or [], 1)]
        if picks:
            print("answer with a number or a name: " + ", ".join(picks), file=sys.stderr)
        return True
    if frame.get("error"):
        who = f" [{frame['from_agent']}]" if frame.get("from_agent") else ""
        print(f"\nerror{who}: {frame.get('error')}: {frame.get('content', '')}", file=sys.stderr)
        return True
    if frame.get("done"):
        sys.stdout.write("\n")
        sys.stdout.flush()
        return True
    if frame.get("delta"):
        sys.stdout.write(str(frame.get("content", "")))
        sys.stdout.flush()
    return False


def run_team_chat(team: str, session: str, message: str | None, gateway: str | None, token: str | None) -> int:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    base = gateway_url(gateway)
    url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    url = f"{url}/api/teams/{quote(team)}/chat?token={quote(access_token(token))}"
    tty = sys.stdin.isatty()
    failures = 0
    try:
        with connect(url, open_timeout=10, max_size=2**24) as ws:

            def turn(text: str) -> bool:
                ws.send(json.dumps({"content": text, "session": session}))
                ok = True
                while True:
                    frame = json.loads(ws.recv())
                    if frame.get("error"):
                        ok = False
                    if _print_frame(frame, tty):
                        return ok

            first = json.loads(ws.recv())
            if first.get("error"):
                raise CommandError(f"team {team}: {first.get('content') or first.get('error')}")
            if message is None or tty:
                _print_frame(first, tty)
            if message is not None:
                return 0 if turn(message) else 1
            while True:
                try:
                    line = input("you> " if tty else "")
                except (EOFError, KeyboardInterrupt):
                    break
                if line.strip() in ("/quit", "/exit"):
                    break
                if line.strip():
                    failures += 0 if turn(line) else 1
    except ConnectionClosed as err:
        raise CommandError(f"the gateway closed the team chat ({err.rcvd.code if err.rcvd else 'no code'})") from None
    except OSError as err:
        raise CommandError(f"cannot reach the gateway at {base} ({err})") from None
    return 1 if failures and not tty else 0
