"""`${VAR}` / `${VAR:-default}` interpolation from the controller's environment, through an allow-list.

The original documented this for templates and never implemented it, so a literal `${OPENAI_API_KEY}`
could reach a container. Here an unset variable without a default is an error that names the
variable (it ends up on the agent's status), and `$${` writes a literal `${`.

The controller's environment holds its own secrets (CLAWPEN_SECRET_KEY, the admin password, host
API keys), and a spec is written by someone the installation does not fully trust: `env: {A:
"${CLAWPEN_SECRET_KEY}"}` must not copy the master key into a container. So a spec or template reads
only variables the operator opened up: names listed in CLAWPEN_INTERPOLATE_VARS, or any name with the
CLAWPEN_VAR_ prefix, and never another CLAWPEN_* setting or anything secret-looking (KEY, SECRET,
TOKEN, PASSWORD...). The provider catalog (the operator's own file) may also read plain non-secret
names such as OPENAI_BASE_URL. A reference to anything else is an error naming it, default or not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\{[^}]*\}?")


VAR_PREFIX = "CLAWPEN_VAR_"
SECRET_LOOKING = re.compile(r"KEY|SECRET|TOKEN|PASSW|PWD|CREDENTIAL|PRIVATE|AUTH|COOKIE|SESSION|CERT", re.IGNORECASE)


@dataclass(frozen=True)
class VarPolicy:
    """Which variables `${...}` may read (see the module docstring)."""

    names: frozenset[str] = field(default_factory=frozenset)  # CLAWPEN_INTERPOLATE_VARS
    plain: bool = False  # also any non-CLAWPEN_, non-secret-looking name (the operator's provider catalog)

    def refusal(self, name: str) -> str | None:
        """Why `name` may not be read (None when it may)."""
        if SECRET_LOOKING.search(name):
            return "it looks like a secret (use spec.secrets for secrets)"
        if name.startswith("CLAWPEN_") and not name.startswith(VAR_PREFIX):
            return "CLAWPEN_* settings are never interpolated"
        if name.startswith(VAR_PREFIX) or name in self.names or self.plain:
            return None
        return f"only {VAR_PREFIX}* variables and those listed in CLAWPEN_INTERPOLATE_VARS may be interpolated"


class VariableNotAllowed(ValueError):
    def __init__(self, variable: str, where: str, why: str):
        super().__init__(f"{where}: ${{{variable}}} is not an allowed variable: {why}")
        self.variable = variable
        self.where = where


class InterpolationError(ValueError):
    def __init__(self, variable: str, where: str):
        super().__init__(f"{where}: environment variable {variable} is not set and has no default")
        self.variable = variable
        self.where = where


def interpolate(value: str, environ: Mapping[str, str], where: str = "value", policy: VarPolicy | None = None) -> str:
    """Expand `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Malformed `${...}` is an error,
    and so is a variable `policy` refuses (the default policy: CLAWPEN_VAR_* only)."""
    rules = policy or VarPolicy()

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name is None:
            raise ValueError(f"{where}: malformed variable reference {text!r} (use ${{NAME}} or ${{NAME:-default}})")
        why = rules.refusal(name)
        if why is not None:
            raise VariableNotAllowed(name, where, why)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise InterpolationError(name, where)

    if "$" not in value:
        return value
    return _PATTERN.sub(replace, value)


def interpolate_map(
    values: Mapping[str, str], environ: Mapping[str, str], where: str, policy: VarPolicy | None = None
) -> dict[str, str]:
    return {k: interpolate(v, environ, f"{where}.{k}", policy) for k, v in values.items()}


def references(value: str) -> list[str]:
    """The variable names `value` refers to (for validation before any environment is read)."""
    return [m.group(1) for m in _PATTERN.finditer(value) if m.group(1)]
