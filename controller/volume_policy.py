"""Which extra volumes a spec may mount: the operator decides, in settings; a spec never does.

A spec (REST, manifest, imported archive) is written by someone the installation does not fully trust,
and a mount is the widest door out of a container. So:
- host bind mounts are off unless the operator names host directories that may be mounted
  (CLAWPEN_HOST_MOUNTS, ':'-separated); a source must lie inside one of them, judged on the path
  with every symlink resolved (Docker follows links, a string comparison does not), and the runtime
  checks again right before it creates the container, because a link can change in between;
- named volumes that belong to Claw Pen (`clawpen_*`: any agent's, any installation's) are never
  mountable, so no agent reaches another's /data or /workspace;
- other named volumes only when the operator allows them (CLAWPEN_ALLOWED_VOLUMES, ','-separated
  names or fnmatch patterns).
Errors name the field (spec.volumes[i].source) and the rule, so a user knows what to change.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from controller.interpolate import VarPolicy, references
from controller.resources import Agent, AgentSpec, VolumeMount

OWN_VOLUME_PREFIX = "clawpen_"


class VolumeNotAllowed(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass(frozen=True)
class VolumePolicy:
    host_dirs: tuple[str, ...] = ()  # host directories bind mounts may come from (empty: none)
    named_volumes: tuple[str, ...] = ()  # names / fnmatch patterns of mountable named volumes

    @classmethod
    def from_strings(cls, host_dirs: str, named_volumes: str) -> VolumePolicy:
        dirs = tuple(d for d in (p.strip() for p in host_dirs.split(":")) if d)
        for d in dirs:
            if not d.startswith("/"):
                raise ValueError(f"CLAWPEN_HOST_MOUNTS: {d!r} is not an absolute path")
        names = tuple(n for n in (p.strip() for p in named_volumes.split(",")) if n)
        return cls(host_dirs=dirs, named_volumes=names)

    def check(self, volumes: Iterable[VolumeMount], *, resolve: bool = False, base: str = "spec.volumes") -> None:
        """Raise VolumeNotAllowed for the first mount the policy refuses.

        resolve=True follows symlinks on this host (the API and the runtime do; translate, being
        pure, judges the normalised path only)."""
        for i, volume in enumerate(volumes):
            field = f"{base}[{i}].source"
            if volume.source.startswith("/"):
                self.check_host_path(volume.source, field, resolve=resolve)
            else:
                self.check_named(volume.source, field)

    def check_named(self, name: str, field: str) -> None:
        if name.lower().startswith(OWN_VOLUME_PREFIX):
            raise VolumeNotAllowed(
                field, f"volume {name!r} belongs to Claw Pen (clawpen_*: agents' own volumes); no spec may mount it"
            )
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in self.named_volumes):
            raise VolumeNotAllowed(
                field,
                f"named volume {name!r} is not allowed; the operator lists mountable volumes in "
                "CLAWPEN_ALLOWED_VOLUMES",
            )

    def check_host_path(self, path: str, field: str, *, resolve: bool = False) -> str:
        """The path as it will be mounted (resolved when asked); raises when outside the allow-list."""
        if not self.host_dirs:
            raise VolumeNotAllowed(
                field,
                f"host bind mounts are off ({path!r}); the operator enables them with CLAWPEN_HOST_MOUNTS "
                "(a ':'-separated list of host directories)",
            )
        real = os.path.realpath(path) if resolve else os.path.normpath(path)
        allowed = [os.path.realpath(d) if resolve else os.path.normpath(d) for d in self.host_dirs]
        if not any(_inside(real, d) for d in allowed):
            shown = f"{path!r}" + (f" (resolves to {real!r})" if real != os.path.normpath(path) else "")
            raise VolumeNotAllowed(
                field, f"host path {shown} is outside the allowed host directories ({':'.join(self.host_dirs)})"
            )
        return real


REST_FIELDS = {
    "volumes": "config.volumes",
    "env": "config.env_vars",
    "model": "config.llm_model",
    "baseURL": "config.base_url",
}
SPEC_FIELDS = {"volumes": "spec.volumes", "env": "spec.env", "model": "spec.model", "baseURL": "spec.baseURL"}


def spec_policy_errors(
    spec: AgentSpec, volumes: VolumePolicy, variables: VarPolicy, fields: dict[str, str] = REST_FIELDS
) -> list[dict[str, str]]:
    """What is refused before a spec is stored (REST create/update, import); translate judges again
    later. `fields` names the fields as the caller's users know them (REST config or manifest spec)."""
    errors: list[dict[str, str]] = []
    try:
        volumes.check(spec.volumes, resolve=True, base=fields["volumes"])
    except VolumeNotAllowed as err:
        errors.append({"field": err.field, "message": err.message})
    texts = {f"{fields['env']}.{k}": v for k, v in spec.env.items()}
    texts.update({fields["model"]: spec.model or "", fields["baseURL"]: spec.base_url or ""})
    for field, text in texts.items():
        for name in references(text):
            why = variables.refusal(name)
            if why is not None:
                errors.append({"field": field, "message": f"${{{name}}} is not an allowed variable: {why}"})
    return errors


def import_policy(settings: Any) -> Callable[[Agent], list[str]]:
    """The check `import_agent` runs on an archive's spec, from the installation's settings."""
    volumes, variables = settings.volume_policy(), VarPolicy(names=settings.interpolation_allow())

    def check(agent: Agent) -> list[str]:
        return [
            f"{e['field']}: {e['message']}" for e in spec_policy_errors(agent.spec, volumes, variables, SPEC_FIELDS)
        ]

    return check
