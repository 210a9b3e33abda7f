"""Label selectors in kubectl's grammar, shared by the CLI (`-l`) and the REST API (`?labelSelector=`).

One parser so that `clawpen get agents -l team=fin` and `GET /api/agents?labelSelector=team=fin` can
never disagree about which agents a selector means.
"""

from __future__ import annotations

from collections.abc import Mapping

Selector = list[tuple[str, str, str | None]]


def parse_selector(text: str | None) -> Selector:
    """Comma-separated `k=v`, `k==v`, `k!=v`, `k` (exists), `!k` (absent); ValueError names a bad term."""
    terms: Selector = []
    for raw in (text or "").split(","):
        term = raw.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append(("!=", key.strip(), value.strip()))
        elif "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            terms.append(("=", key.strip(), value.strip()))
        elif term.startswith("!"):
            terms.append(("!", term[1:].strip(), None))
        else:
            terms.append(("exists", term, None))
    for _, key, _ in terms:
        if not key:
            raise ValueError(f"{text!r}: a label key is empty")
    return terms


def matches(labels: Mapping[str, str], selector: Selector) -> bool:
    for op, key, value in selector:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True
