"""`clawpen get templates`: the catalog's templates and their warm pools, kubectl style.

Templates are not stored resources (no spec files, no status, no labels): they come from
templates/agents.yaml, and the POOL column from the pool task's report in the home
(controller.warm_pool.status), the same report `GET /api/templates` shows: `2/2 ready`,
`1/2 ready, 1 starting`, `off (why)`, or `-` for a template without warmPool. `-o json|yaml`
prints the documents the API returns. Kept apart from get.py, which is about stored resources.
"""

from __future__ import annotations

import argparse
from typing import Any

from controller.commands._common import OUTPUT_HELP, jsonpath, render, settings, table
from controller.warm_pool.status import PoolStatus, summary, with_pools
from controller.wiring import open_catalog

KINDS = ("template", "templates", "tmpl")
COLUMNS = ["NAME", "PROGRAM", "PROVIDER", "MODEL", "POOL"]
WIDE = ["DESCRIPTION"]


def template_docs(names: list[str]) -> list[dict[str, Any]]:
    """The templates (all, or these by name) as `GET /api/templates` returns them."""
    cfg = settings()
    catalog = open_catalog(cfg)
    missing = [name for name in names if name not in catalog.templates]
    if missing:
        raise ValueError(f"template {missing[0]!r} not found (known: {', '.join(sorted(catalog.templates))})")
    entries = [{**t.model_dump(mode="json"), "id": key} for key, t in sorted(catalog.templates.items())]
    docs = with_pools(entries, cfg.home, cfg.runtime)
    return [d for d in docs if d["id"] in names] if names else docs


def template_row(doc: dict[str, Any], wide: bool = False) -> list[str]:
    config = doc.get("config") or {}
    pool = doc.get("warm_pool")
    row = [
        doc["id"],
        config.get("program") or "clawpen",
        config.get("llm_provider") or "-",
        config.get("llm_model") or "-",
        summary(PoolStatus(**pool)) if pool else "-",
    ]
    if wide:
        row.append(doc.get("description") or "-")
    return row


def get_templates(args: argparse.Namespace, names: list[str]) -> int:
    if args.watch:
        raise ValueError("templates cannot be watched (they change when templates/agents.yaml is edited)")
    if args.selector:
        raise ValueError("templates have no labels: -l does not apply")
    docs = template_docs(names)
    output = args.output
    if output in ("table", "wide"):
        rows = [template_row(d, output == "wide") for d in docs]
        print(table(rows, COLUMNS + (WIDE if output == "wide" else []), headers=not args.no_headers))
    elif output == "name":
        print("\n".join(f"template/{d['id']}" for d in docs))
    elif output.startswith("jsonpath="):
        print(jsonpath(docs[0] if len(docs) == 1 and names else {"kind": "List", "items": docs}, output[9:]))
    elif output in ("json", "yaml"):
        print(render(docs[0] if len(docs) == 1 and names else docs, output), end="" if output == "yaml" else "\n")
    else:
        raise ValueError(f"-o {output!r}: use {OUTPUT_HELP}")
    return 0
