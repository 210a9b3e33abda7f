"""Writing a new version of a hand-written YAML file without losing what its author put there.

Why ruamel.yaml: PyYAML reads comments as whitespace, so every `clawpen stop` used to rewrite a
user's spec file from scratch, dropping comments and reordering keys. Here the old file is loaded
as a round-trip tree and the new document is merged into it: unchanged values keep their exact
text, comments and position; changed values are replaced in place; removed keys go; new keys are
appended. The merged result is checked to mean exactly the new document (else the caller falls
back to a plain dump), so formatting never wins over correctness.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import yaml


def _merge(node: Any, new: Any, full: Any) -> Any:
    """`new`, reusing `node` (a ruamel container) wherever the structure matches. `full` is `new`
    with defaults spelled out: a key the author wrote that now holds its default keeps being
    written (with the default value) instead of vanishing from their file."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap) and isinstance(new, dict):
        full = full if isinstance(full, dict) else new
        for key in [k for k in node if k not in new and k not in full]:
            del node[key]
        for key in list(node):
            value = new[key] if key in new else full[key]
            if node[key] != value or type(node[key]) is not type(value):
                node[key] = _merge(node[key], value, full.get(key, value))
        for key, value in new.items():
            if key not in node:
                node[key] = value
        return node
    if isinstance(node, CommentedSeq) and isinstance(new, list) and len(node) == len(new):
        full = full if isinstance(full, list) and len(full) == len(new) else new
        for i, value in enumerate(new):
            if node[i] != value:
                node[i] = _merge(node[i], value, full[i])
        return node
    return new


def update_yaml(
    previous: bytes, new: dict[str, Any], full: dict[str, Any], same: Callable[[Any], bool]
) -> bytes | None:
    """`previous` (a one-document YAML file) changed to mean `new`, or None when that cannot be
    done faithfully (not one mapping document, a merge that `same` says reads back differently)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a user's long lines
    try:
        docs = list(rt.load_all(previous.decode("utf-8")))
    except Exception:  # noqa: BLE001 - any parse problem: the caller writes a plain file
        return None
    if len(docs) != 1 or not isinstance(docs[0], CommentedMap):
        return None
    merged = _merge(docs[0], new, full)
    out = io.StringIO()
    try:
        rt.dump(merged, out)
    except Exception:  # noqa: BLE001
        return None
    text = out.getvalue()
    try:
        if not same(yaml.safe_load(text)):
            return None
    except Exception:  # noqa: BLE001 - reads back as something else, or not at all
        return None
    return text.encode()
