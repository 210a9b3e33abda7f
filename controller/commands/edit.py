"""`clawpen edit TYPE NAME`: change a resource in $EDITOR, validated before anything is saved.

With the file store the editor gets the spec file itself (comments and all) and the result is
written back as the user wrote it; other stores get the rendered spec. An invalid result reopens
the editor with the error on top, as `kubectl edit` does; saving it unchanged gives up (exit 1)
and the stored resource stays as it was.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from controller.catalog import unknown_names
from controller.cli import CommandError
from controller.commands._common import add_namespace, namespace_of, resource_class, settings
from controller.resources import Agent, ManifestError, Resource, parse_resource
from controller.volume_policy import import_policy
from controller.wiring import open_catalog, open_store

ERROR_MARK = "# clawpen edit error: "


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("edit", help="edit a resource in $EDITOR (validated on save)")
    p.add_argument("kind", help="agent | team, or TYPE/NAME")
    p.add_argument("name", nargs="?", help="the resource's name")
    add_namespace(p)
    p.set_defaults(handler=cmd_edit)


def _validate(cls: type[Resource], name: str, text: str) -> Resource:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ManifestError(f"invalid YAML: {str(err).splitlines()[0]}") from None
    obj = parse_resource(doc)
    if not isinstance(obj, cls) or obj.name != name:
        raise ManifestError(f"kind and metadata.name must stay {cls.KIND} {name}")
    if isinstance(obj, Agent):
        cfg = settings()
        problems = [f"spec.{f}: {m}" for f, m in unknown_names(open_catalog(cfg), obj.spec.template, obj.spec.provider)]
        problems += import_policy(cfg)(obj)
        if problems:
            raise ManifestError("; ".join(problems))
    return obj


def _run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    result = subprocess.run([*shlex.split(editor), str(path)], check=False)
    if result.returncode != 0:
        raise CommandError(f"the editor ({editor}) exited with {result.returncode}; nothing changed")


async def cmd_edit(args: argparse.Namespace) -> int:
    from controller.commands.resources import apply_resource

    kind, name = args.kind, args.name
    if "/" in kind:
        kind, name = kind.split("/", 1)
    if not name:
        raise ValueError("edit takes TYPE NAME or TYPE/NAME")
    cls = resource_class(kind)
    store = open_store(settings())
    try:
        obj = await store.get(cls, name, namespace_of(args))
        spec_path: Any = getattr(store, "spec_path", None)
        file = Path(spec_path(cls, name)) if spec_path else None
        if file is not None and file.exists():
            original = file.read_text(encoding="utf-8")
        else:
            from controller.store.specfile import render_spec

            file, original = None, render_spec(obj).decode()
        with tempfile.TemporaryDirectory(prefix="clawpen-edit-") as tmp:
            path = Path(tmp) / f"{cls.KIND.lower()}-{name}.yaml"
            shown, error = original, None
            while True:
                path.write_text(shown, encoding="utf-8")
                _run_editor(path)
                edited = path.read_text(encoding="utf-8")
                if edited == shown:
                    if error:
                        raise CommandError(f"edit cancelled, nothing saved: {error}")
                    print("edit cancelled, no changes made")
                    return 0
                text = "".join(line for line in edited.splitlines(keepends=True) if not line.startswith(ERROR_MARK))
                try:
                    new = _validate(cls, name, text)
                except ManifestError as err:
                    error = str(err)
                    shown = "".join(f"{ERROR_MARK}{line}\n" for line in error.splitlines()) + text
                    continue
                break
        if text == original:
            print("edit cancelled, no changes made")
            return 0
        if file is not None:
            from controller.store.fileio import atomic_write

            atomic_write(file, text.encode("utf-8"), mode=0o600)  # as written: comments and all
            print(f"{cls.KIND.lower()}/{name} edited")
        else:
            print(f"{cls.KIND.lower()}/{name} {await apply_resource(store, new)}")
    finally:
        await store.close()
    return 0
