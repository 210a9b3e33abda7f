"""`clawpen explain agent.spec.resources`: the schema, from the pydantic models themselves.

The same models generate the CRDs, so what `explain` prints is what `kubectl explain` shows for
the CRD: each field's type and description, for any path into Agent or Team.
"""

from __future__ import annotations

import argparse
from typing import Any

from controller.commands._common import resource_class
from controller.resources import API_VERSION


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", help="describe the fields of a resource (e.g. agent.spec.resources)")
    p.add_argument("path", help="TYPE[.field[.field...]], e.g. agent, agent.spec, team.spec.router")
    p.set_defaults(handler=cmd_explain)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = {**schema["$defs"][node["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
            continue
        options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1 and "properties" not in node:
            node = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
            continue
        if node.get("type") == "array" and "items" in node and "properties" not in node:
            return node
        return node


def _type(schema: dict[str, Any], node: dict[str, Any]) -> str:
    node = _resolve(schema, node)
    if "enum" in node:
        return "enum: " + ", ".join(map(str, node["enum"]))
    kind = node.get("type")
    if kind == "array":
        return f"[]{_type(schema, node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node and "properties" not in node:
        extra = node["additionalProperties"]
        return f"map[string]{_type(schema, extra) if isinstance(extra, dict) else 'any'}"
    if "properties" in node:
        return "Object"
    if "anyOf" in node:
        return " | ".join(_type(schema, o) for o in node["anyOf"] if o.get("type") != "null")
    return str(kind or "any")


def cmd_explain(args: argparse.Namespace) -> int:
    kind, *fields = args.path.split(".")
    cls = resource_class(kind)
    schema = cls.model_json_schema(by_alias=True)
    node: dict[str, Any] = schema
    walked = [cls.KIND]
    for field in fields:
        node = _resolve(schema, node)
        if node.get("type") == "array":
            node = _resolve(schema, node.get("items", {}))
        props = node.get("properties", {})
        if field not in props:
            known = ", ".join(sorted(props)) or "none (not an object)"
            raise ValueError(f"{'.'.join(walked)} has no field {field!r} (fields: {known})")
        node = props[field]
        walked.append(field)
    described = node.get("description", "")
    node = _resolve(schema, node)
    print(f"KIND:     {cls.KIND}")
    print(f"VERSION:  {API_VERSION}")
    if fields:
        print(f"\nFIELD:    {fields[-1]} <{_type(schema, node)}>")
    print(f"\nDESCRIPTION:\n    {described or node.get('description') or cls.__doc__ or '(none)'}".rstrip())
    if node.get("type") == "array":
        node = _resolve(schema, node.get("items", {}))
    props = node.get("properties", {})
    if props:
        required = set(node.get("required", []))
        print("\nFIELDS:")
        for name, sub in props.items():
            mark = " -required-" if name in required else ""
            print(f"  {name}\t<{_type(schema, sub)}>{mark}")
            desc = sub.get("description") or _resolve(schema, sub).get("description") or ""
            if desc:
                print(f"    {desc.splitlines()[0]}")
    return 0
