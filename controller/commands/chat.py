"""`clawpen chat NAME`: talk to an agent from the terminal, tokens printed as they arrive.

It reads the agent's endpoint from its status (the controller writes it) and speaks the agent's
chat contract directly, with the agent's bearer token (controller.agent_token) and a session id
(default `main`, the same default as the gateway's chat,
so the terminal and the web UI continue one conversation). The agent keeps the history; this
command sends only each new message. Tool activity is shown as one `[tool]` line per call and
result on stderr (stdout stays the reply), and a call that needs approval asks y/N (a piped chat
reads the answer from the next input line; EOF denies). Ctrl-C during a reply stops it (closing the stream makes the
agent cancel the model call); Ctrl-C or Ctrl-D at the prompt ends the chat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import httpx

from agent.sessions import InvalidSession, validate_session_id
from controller.cli import CommandError
from controller.commands._common import settings
from controller.resources import Agent
from controller.store.base import InvalidObject

DEFAULT_SESSION = "main"
TOOL_EVENTS = ("tool_call", "tool_result", "approval_request")
CONNECT_TIMEOUT = 5.0
# Between streamed chunks. The agent itself times out the model call (CLAWPEN_REQUEST_TIMEOUT, 120 s)
# and reports it as an error event, so this only guards against an agent that vanished.
READ_TIMEOUT = 300.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "chat", help="chat with an agent, or a team (team/NAME, routed by the gateway), in the terminal"
    )
    p.add_argument("name", help="an agent's name, or team/NAME for a team's routed chat")
    p.add_argument("--session", default=DEFAULT_SESSION, help=f"conversation id (default {DEFAULT_SESSION})")
    p.add_argument("-n", "--namespace", help="the agent's namespace (default: CLAWPEN_NAMESPACE or default)")
    p.add_argument("-m", "--message", help="send this one message, print the reply, and exit")
    p.add_argument("--endpoint", help="the agent's URL, instead of reading it from the agent's status")
    p.add_argument("--gateway", help="team chat: the gateway's URL (default: the one `clawpen up` runs)")
    p.add_argument("--token", help="team chat: an access token (default: $CLAWPEN_TOKEN, else minted locally)")
    p.set_defaults(handler=cmd_chat)


async def agent_endpoint(name: str, namespace: str) -> str:
    """The agent's chat URL from its status, or a one-line reason it has none."""
    from controller.wiring import open_store

    store = open_store(settings())
    try:
        agent = await store.get(Agent, name, namespace)
    finally:
        await store.close()
    status = agent.status
    if status is None or not status.endpoint:
        phase = status.phase.value if status else "Pending"
        raise CommandError(
            f"agent {namespace}/{name} has no endpoint yet (phase {phase}); "
            f"is it running and is the controller up? see `clawpen describe agent {name}`"
        )
    return status.endpoint.rstrip("/")


async def agent_headers(key: str) -> dict[str, str]:
    """The agent's bearer token, from where the controller keeps it (the same helper the gateway uses)."""
    from controller.agent_token import auth_headers, open_agent_tokens
    from controller.wiring import open_runtime

    config = settings()
    runtime = open_runtime(config)
    try:
        return await auth_headers(open_agent_tokens(config.home, runtime), key)
    finally:
        await runtime.close()


def check_ready(client: httpx.Client, endpoint: str, label: str) -> None:
    try:
        resp = client.get(f"{endpoint}/healthz")
    except httpx.TransportError as err:
        raise CommandError(f"cannot reach agent {label} at {endpoint} ({type(err).__name__})") from None
    if resp.status_code == 503:
        try:
            reason = resp.json().get("reason", "not ready")
        except ValueError:
            reason = "not ready"
        raise CommandError(f"agent {label} is not ready: {reason}")
    if resp.status_code != 200:
        raise CommandError(f"agent {label} health check answered HTTP {resp.status_code}")


def stream_reply(client: httpx.Client, endpoint: str, session: str, content: str) -> Iterator[str | dict[str, Any]]:
    """The reply's text chunks, and tool events as dicts ({"type": "tool_call", ...}); an error event
    or HTTP error becomes a CommandError."""
    body = {"messages": [{"role": "user", "content": content}], "stream": True, "session": session}
    with client.stream("POST", f"{endpoint}/v1/chat/completions", json=body) as resp:
        if resp.status_code != 200:
            resp.read()
            raise CommandError(_error_text(resp.text, f"HTTP {resp.status_code}"))
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if "error" in event:
                raise CommandError(_error_text(data, "the agent reported an error"))
            if event.get("type") in TOOL_EVENTS:
                yield event
                continue
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text
    raise CommandError("the agent's stream ended before the reply was complete")


def _error_text(raw: str, fallback: str) -> str:
    try:
        err = json.loads(raw).get("error", {})
        return str(err.get("message") or fallback)
    except (ValueError, AttributeError):
        return fallback


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ask_approval(event: dict[str, Any]) -> bool:
    """y/N on the terminal (or the next line of piped input); anything but y/yes, or EOF, denies."""
    print(f"? approve {event.get('name')} {_short(event.get('arguments'))} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def show_tool_event(client: httpx.Client, endpoint: str, event: dict[str, Any]) -> None:
    """One compact stderr line per tool event (stdout stays the reply); approval requests are asked."""
    kind = event.get("type")
    if kind == "tool_call":
        print(f"\n[tool] {event.get('name')} {_short(event.get('arguments'))}", file=sys.stderr, flush=True)
    elif kind == "tool_result":
        output = str(event.get("output") or "")
        lines = output.count("\n") + 1 if output else 0
        mark = "error" if event.get("is_error") else "ok"
        print(f"[tool] {event.get('name')} {mark}: {_short(output, 80)} ({lines} lines)", file=sys.stderr, flush=True)
    elif kind == "approval_request":
        approve = ask_approval(event)
        try:
            resp = client.post(f"{endpoint}/v1/chat/approvals", json={"id": event.get("id"), "approve": approve})
        except httpx.TransportError as err:
            print(f"[tool] could not send the answer ({type(err).__name__})", file=sys.stderr)
            return
        if resp.status_code != 200:
            print(f"[tool] answer not applied: {_error_text(resp.text, f'HTTP {resp.status_code}')}", file=sys.stderr)


def _turn(client: httpx.Client, endpoint: str, session: str, content: str, out: TextIO) -> bool:
    """Print one streamed reply; False when it failed (the message is printed to stderr)."""
    try:
        for chunk in stream_reply(client, endpoint, session, content):
            if isinstance(chunk, dict):
                show_tool_event(client, endpoint, chunk)
                continue
            out.write(chunk)
            out.flush()
    except CommandError as err:
        out.write("\n")
        print(f"error: {err}", file=sys.stderr)
        return False
    except httpx.TimeoutException:
        out.write("\n")
        print(f"error: the agent sent nothing for {READ_TIMEOUT:g}s", file=sys.stderr)
        return False
    except httpx.TransportError as err:
        out.write("\n")
        print(f"error: lost the connection to the agent ({type(err).__name__})", file=sys.stderr)
        return False
    out.write("\n")
    out.flush()
    return True


def cmd_chat(args: argparse.Namespace) -> int:
    namespace = args.namespace or settings().namespace
    try:
        validate_session_id(args.session)
    except InvalidSession as err:
        raise CommandError(f"--session: {err}") from None
    if args.name.startswith(("team/", "teams/")):
        from controller.commands.team_chat import run_team_chat

        return run_team_chat(args.name.split("/", 1)[1], args.session, args.message, args.gateway, args.token)
    if "/" in args.name:
        kind, _, name = args.name.partition("/")
        if kind not in ("agent", "agents"):
            raise CommandError(f"chat {args.name}: use NAME, agent/NAME or team/NAME")
        args.name = name
    label = f"{namespace}/{args.name}"
    if args.endpoint:
        endpoint = args.endpoint.rstrip("/")
    else:
        try:
            endpoint = asyncio.run(agent_endpoint(args.name, namespace))
        except InvalidObject as err:
            raise CommandError(str(err)) from None
    headers = asyncio.run(agent_headers(f"{namespace}/{args.name}"))
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    # trust_env=False: the agent is on this host (or its network); an HTTP(S)_PROXY must not capture it.
    with httpx.Client(timeout=timeout, trust_env=False, headers=headers) as client:
        check_ready(client, endpoint, label)
        if args.message is not None:
            return 0 if _turn(client, endpoint, args.session, args.message, sys.stdout) else 1
        return _interactive(client, endpoint, args.name, args.session)


def _interactive(client: httpx.Client, endpoint: str, name: str, session: str) -> int:
    tty = sys.stdin.isatty()
    if tty:
        print(
            f"chatting with {name} (session {session}); /quit or Ctrl-D to quit, Ctrl-C stops a reply",
            file=sys.stderr,
        )
    failures = 0
    while True:
        try:
            line = input("you> " if tty else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            print(file=sys.stderr)
            break
        if not line.strip():
            continue
        if line.strip() in ("/quit", "/exit"):  # a command to us, never a message to the model
            break
        if tty:
            sys.stdout.write(f"{name}> ")
            sys.stdout.flush()
        try:
            ok = _turn(client, endpoint, session, line, sys.stdout)
        except KeyboardInterrupt:
            # Leaving the stream's `with` closed the connection: the agent cancels the model call.
            print("\n[stopped]", file=sys.stderr)
            continue
        failures += 0 if ok else 1
    return 1 if failures and not tty else 0
