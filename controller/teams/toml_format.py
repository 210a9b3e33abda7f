"""The seed's team file format (teams/*.toml) read into, and written back from, the Team resource.

Why a translation and not a second schema: the seed's users have TOML team files, while the rest of
Claw Pen speaks Agent/Team manifests. Reading TOML into the same pydantic `Team` model means one set of
validation rules for `clawpen apply -f team.toml`, `kubectl apply -f team.yaml` and the gateway. Errors
are re-phrased in the TOML's own terms (`[router].confidence_threshold`), so a user can find the line.

Naming: a Team's metadata.name must be a DNS-1123 label, while the seed's `[team].name` is a display
name ("Finance AI Team"). The resource name is `[team].id` when given, else the file name's stem
(teams/finance-team.toml -> finance-team), else a slug of `[team].name`.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.resources import DNS1123_LABEL, ManifestError, ObjectMeta, Resource, Team, TeamSpec

SECTIONS = ("team", "router", "agents", "routing", "clarification", "responses")
TEAM_KEYS = ("id", "name", "description", "version")
ROUTER_KEYS = (
    "name", "mode", "confidence_threshold", "clarify_on_low_confidence",
    "provider", "model", "base_url", "fallback_intent", "similarity_floor", "learn",
)
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def slugify(text: str) -> str:
    """A DNS-1123 label from free text ("Finance AI Team" -> "finance-ai-team"); "" when none is possible."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:63].rstrip("-")


def _table(doc: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ManifestError(f"{source}: [{key}] must be a table (got {type(value).__name__})")
    return value


def _check_keys(table: dict[str, Any], allowed: tuple[str, ...], section: str, source: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ManifestError(
            f"{source}: [{section}].{unknown[0]}: unknown field (allowed: {', '.join(allowed)})"
        )


def _toml_path(loc: tuple[Any, ...]) -> str:
    """Map a pydantic error location inside TeamSpec back to the TOML key the user wrote."""
    if not loc:
        return ""
    head, rest = str(loc[0]), [str(p) for p in loc[1:]]
    if head == "display_name":
        return "[team].name"
    if head in ("description", "version"):
        return f"[team].{head}"
    if head == "fallback_intent":
        return "[router].fallback_intent"
    if head == "routing" and rest:
        return f"[routing.{rest[0]}]" + "".join(f".{p}" for p in rest[1:])
    return f"[{head}]" + "".join(f".{p}" for p in rest)


def _resource_name(team_table: dict[str, Any], source: str, stem: str | None) -> str:
    explicit = team_table.get("id")
    if explicit is not None:
        if not isinstance(explicit, str) or not DNS1123_LABEL.match(explicit):
            raise ManifestError(
                f"{source}: [team].id: must be a DNS-1123 label: lowercase letters, digits and '-', "
                f"starting and ending with a letter or digit (got {explicit!r})"
            )
        return explicit
    for candidate in (stem, team_table.get("name")):
        if isinstance(candidate, str) and (slug := slugify(candidate)):
            return slug
    raise ManifestError(f"{source}: [team].id: cannot derive a team name; set [team].id or [team].name")


def parse_team_toml(text: str, source: str = "<team.toml>", stem: str | None = None) -> Team:
    """Parse the seed's team TOML into a Team, or raise ManifestError naming the source and field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{source}: invalid TOML: {err}") from None
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise ManifestError(f"{source}: [{unknown[0]}]: unknown section (allowed: {', '.join(SECTIONS)})")
    if "team" not in doc:
        raise ManifestError(f"{source}: [team]: missing (a team file starts with a [team] table)")
    team = _table(doc, "team", source)
    router = dict(_table(doc, "router", source))
    _check_keys(team, TEAM_KEYS, "team", source)
    _check_keys(router, ROUTER_KEYS, "router", source)
    routing = _table(doc, "routing", source)
    fallback = router.pop("fallback_intent", None)
    spec: dict[str, Any] = {
        "router": router,
        "agents": _table(doc, "agents", source),
        "routing": routing,
        "clarification": _table(doc, "clarification", source),
        "responses": _table(doc, "responses", source),
    }
    for key, field in (("name", "display_name"), ("description", "description"), ("version", "version")):
        if key in team:
            spec[field] = team[key]
    if fallback is not None:
        spec["fallback_intent"] = fallback
    name = _resource_name(team, source, stem)
    try:
        validated = TeamSpec.model_validate(spec)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            path = _toml_path(tuple(e["loc"]))
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{path}: {msg}" if path else msg)
        raise ManifestError(f"{source}: " + "; ".join(parts)) from None
    return Team(metadata=ObjectMeta(name=name), spec=validated)


def load_team_file(path: str | Path) -> Team:
    """Read one teams/*.toml file into a Team; ManifestError names the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None
    return parse_team_toml(text, source=str(path), stem=path.stem)


def load_toml_manifests(path: str | Path) -> list[Resource]:
    """A .toml manifest file holds exactly one Team."""
    return [load_team_file(path)]


def team_documents(path: Path, text: str) -> list[Any]:
    """The Loader for controller/manifests.py (registered there for `.toml`).

    The loader prefixes errors with the file name itself; the team's name comes from [team].id,
    [team].name or the file name, as in load_team_file.
    """
    try:
        return [parse_team_toml(text, source="", stem=path.stem).dump()]
    except ManifestError as err:
        raise ManifestError(str(err).removeprefix(": ")) from None


# ---- writing ---------------------------------------------------------------------------------------


def _string(value: str) -> str:
    # A JSON string is a valid TOML basic string once DEL (allowed raw in JSON, not in TOML) is escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    return key if BARE_KEY.match(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "".join(f"    {_value(v)},\n" for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _section(header: str, items: dict[str, Any]) -> str:
    lines = [f"[{header}]"] + [f"{_key(k)} = {_value(v)}" for k, v in items.items() if v is not None]
    return "\n".join(lines) + "\n"


def dump_team_toml(team: Team) -> str:
    """The seed's TOML for a Team; parse_team_toml(dump_team_toml(t)) gives back the same name and spec."""
    spec = team.spec
    out = [
        _section("team", {
            "id": team.metadata.name,
            "name": spec.display_name,
            "description": spec.description,
            "version": spec.version,
        }),
        _section("router", {
            **spec.router.model_dump(exclude_none=True),
            "fallback_intent": spec.fallback_intent,
        }),
        _section("agents", {i: a.model_dump() for i, a in spec.agents.items()}),
    ]
    out += [_section(f"routing.{_key(i)}", r.model_dump()) for i, r in spec.routing.items()]
    out.append(_section("clarification", spec.clarification.model_dump()))
    out.append(_section("responses", spec.responses.model_dump()))
    return "\n".join(out)
