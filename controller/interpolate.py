"""`${VAR}` / `${VAR:-default}` interpolation from the controller's environment.

The original documented this for templates and never implemented it, so a literal `${OPENAI_API_KEY}`
could reach a container. Here an unset variable without a default is an error that names the
variable (it ends up on the agent's status), and `$${` writes a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\{[^}]*\}?")


class InterpolationError(ValueError):
    def __init__(self, variable: str, where: str):
        super().__init__(f"{where}: environment variable {variable} is not set and has no default")
        self.variable = variable
        self.where = where


def interpolate(value: str, environ: Mapping[str, str], where: str = "value") -> str:
    """Expand `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Malformed `${...}` is an error."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name is None:
            raise ValueError(f"{where}: malformed variable reference {text!r} (use ${{NAME}} or ${{NAME:-default}})")
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise InterpolationError(name, where)

    if "$" not in value:
        return value
    return _PATTERN.sub(replace, value)


def interpolate_map(values: Mapping[str, str], environ: Mapping[str, str], where: str) -> dict[str, str]:
    return {k: interpolate(v, environ, f"{where}.{k}") for k, v in values.items()}
