"""Shared helpers for CLI commands: settings, store/runtime handles, output formatting."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import yaml

from controller.labels import Selector
from controller.labels import matches as matches
from controller.labels import parse_selector as parse_labels
from controller.resources import PLURALS, Resource
from controller.settings import Settings

KIND_ALIASES = {
    "agent": "agents",
    "agents": "agents",
    "ag": "agents",
    "team": "teams",
    "teams": "teams",
}


def settings() -> Settings:
    return Settings.from_env()


def resource_class(kind: str) -> type[Resource]:
    plural = KIND_ALIASES.get(kind.lower())
    if plural is None:
        raise ValueError(f"unknown resource type {kind!r} (use agents or teams)")
    return PLURALS[plural]


def age(created: datetime | None) -> str:
    if created is None:
        return "-"
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def render(objs: list[dict[str, Any]] | dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(objs, indent=2, default=str)
    if isinstance(objs, list):
        return yaml.safe_dump_all(objs, sort_keys=False) if objs else ""
    return yaml.safe_dump(objs, sort_keys=False)


def table(rows: list[list[str]], header: list[str], *, headers: bool = True) -> str:
    shown = [header, *rows] if headers else rows
    if not shown:
        return ""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in shown]
    return "\n".join(lines)


# ---- kubectl-style selection and output ------------------------------------------------------------

OUTPUT_HELP = "table (default) | wide | name | yaml | json | jsonpath=TEMPLATE (e.g. jsonpath={.status.phase})"


def add_namespace(p: Any) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        help="namespace (default: CLAWPEN_NAMESPACE or 'default'; the file store has only 'default')",
    )


def namespace_of(args: Any) -> str:
    return getattr(args, "namespace", None) or settings().namespace


def parse_selector(text: str | None) -> Selector:
    """`-l` as kubectl takes it (controller/labels.py, shared with the REST API's labelSelector)."""
    try:
        return parse_labels(text)
    except ValueError as err:
        raise ValueError(f"-l {err}") from None


def jsonpath(doc: Any, template: str) -> str:
    """kubectl's jsonpath output for the common cases: `{.a.b}`, `{.items[*].metadata.name}`,
    `{.list[0]}`, `{range .items[*]}...{end}`, and literal text between (with \\n, \\t)."""
    import re

    template = template.replace("\\n", "\n").replace("\\t", "\t")
    tokens = re.split(r"(\{[^{}]*\})", template)
    out: list[str] = []

    def lookup(node: Any, path: str) -> list[Any]:
        nodes = [node]
        for part in re.findall(r"\.([^.\[\]]+)|\[(\*|-?\d+)\]", path.strip().removeprefix("$")):
            name, index = part
            nxt: list[Any] = []
            for n in nodes:
                if name:
                    if isinstance(n, dict) and name in n:
                        nxt.append(n[name])
                elif index == "*":
                    nxt.extend(n if isinstance(n, list) else list(n.values()) if isinstance(n, dict) else [])
                elif isinstance(n, list):
                    with contextlib.suppress(IndexError):
                        nxt.append(n[int(index)])
            nodes = nxt
        return nodes

    def text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, default=str)

    def run(tokens: list[str], node: Any) -> None:
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.startswith("{") and tok.endswith("}"):
                expr = tok[1:-1].strip()
                if expr.startswith("range "):
                    depth, j = 1, i + 1
                    while j < len(tokens):
                        inner = tokens[j][1:-1].strip() if tokens[j].startswith("{") else ""
                        depth += inner.startswith("range ") - (inner == "end")
                        if depth == 0:
                            break
                        j += 1
                    for item in lookup(node, expr[6:]):
                        run(tokens[i + 1 : j], item)
                    i = j + 1
                    continue
                out.append(" ".join(text(v) for v in lookup(node, expr)))
            else:
                out.append(tok)
            i += 1

    run(tokens, doc)
    return "".join(out)
