"""Reading manifests for `clawpen apply -f FILE|DIR`.

A manifest file may hold several YAML documents (`---`), a directory is read recursively in sorted
order (so applying a directory is deterministic), and every error names the file and the document
so a user with twenty files knows where to look. Parsing is dispatched on the file suffix through
LOADERS: other formats (the seed's TOML team files) register a loader there instead of growing
this module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from controller.resources import ManifestError, Resource, parse_resource

# A loader turns one file (its path, for loaders that derive a name from it, and its text) into
# manifest documents (None for empty ones); it raises ManifestError for errors, and the caller
# prefixes the file name.
Loader = Callable[[Path, str], list[Any]]


def _yaml_documents(_path: Path, text: str) -> list[Any]:
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ManifestError(f"invalid YAML: {problem}{where}") from None


LOADERS: dict[str, Loader] = {".yaml": _yaml_documents, ".yml": _yaml_documents}


def register_loader(suffix: str, loader: Loader) -> None:
    """Teach load_manifests a new file type, e.g. register_loader(".toml", team_documents), where
    team_documents(path, text) returns [{"apiVersion": ..., "kind": "Team", "metadata": ..., ...}]."""
    LOADERS[suffix.lower()] = loader


def manifest_files(path: Path) -> list[Path]:
    """The files `apply -f path` reads: the file itself, or every known file under a directory."""
    if not path.exists():
        raise ManifestError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix.lower() not in LOADERS:
            known = ", ".join(sorted(LOADERS))
            raise ManifestError(f"{path}: unsupported file type {path.suffix or '(none)'!r} (use {known})")
        return [path]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in LOADERS
        and not any(part.startswith(".") for part in p.relative_to(path).parts)  # .git, editor files
    )
    if not files:
        raise ManifestError(f"{path}: no manifest files ({', '.join(sorted(LOADERS))}) in this directory")
    return files


def load_file(path: Path) -> list[Resource]:
    """Every non-empty document of one file, validated."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise ManifestError(f"{path}: cannot read ({err.strerror})") from None
    try:
        documents = LOADERS[path.suffix.lower()](path, text)
    except ManifestError as err:
        raise ManifestError(f"{path}: {err}") from None
    except RecursionError:  # a parser recursing through thousands of nested levels
        raise ManifestError(f"{path}: nested too deeply to be a manifest") from None
    resources: list[Resource] = []
    for index, doc in enumerate(documents, start=1):
        if doc is None:
            continue
        try:
            resources.append(parse_resource(doc))
        except ManifestError as err:
            raise ManifestError(f"{path}: document {index}: {err}") from None
        except RecursionError:
            raise ManifestError(f"{path}: document {index}: nested too deeply to be a manifest") from None
    return resources


def load_manifests(path: Path) -> list[Resource]:
    """All resources in a file or directory, in order; a (kind, name) given twice is an error."""
    resources: list[Resource] = []
    origin: dict[tuple[str, str], Path] = {}
    for file in manifest_files(Path(path)):
        for resource in load_file(file):
            key = (resource.KIND, resource.metadata.name)
            if key in origin:
                raise ManifestError(
                    f"{file}: {resource.KIND} {resource.metadata.name} is also defined in {origin[key]}"
                )
            origin[key] = file
            resources.append(resource)
    return resources


def _register_builtin_loaders() -> None:
    from controller.teams.toml_format import team_documents

    register_loader(".toml", team_documents)


_register_builtin_loaders()
