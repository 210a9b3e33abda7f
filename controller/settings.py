"""Settings from the environment: one place that knows every CLAWPEN_* variable.

Several Claw Pen installations may share one Docker host (a laptop user and a test run, say);
`instance` keeps their containers apart so one controller never adopts or prunes another's.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from controller import __version__

if TYPE_CHECKING:
    from controller.volume_policy import VolumePolicy

DEFAULT_HOME = Path("~/.local/share/clawpen").expanduser()
REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_instance(home: Path) -> str:
    if home.resolve() == DEFAULT_HOME.resolve():
        return "default"
    return "h" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]


def default_workers() -> int:
    """Reconcile parallelism from the machine: most of a reconcile waits on the engine (create, start,
    inspect, a probe), so a few workers per core keep it busy; capped so a big host does not flood
    dockerd. 2 cores → 8. CLAWPEN_WORKERS overrides."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(4, min(32, 4 * cores))


def _templates_dir() -> Path:
    for candidate in (REPO_ROOT / "templates", Path(__file__).resolve().parent / "data" / "templates"):
        if (candidate / "agents.yaml").exists():
            return candidate
    return REPO_ROOT / "templates"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    home: Path
    instance: str
    store: str = "files"  # files | kube
    runtime: str = "docker"  # docker | kubernetes
    namespace: str = "default"
    image: str = f"clawpen/agent:{__version__}"
    templates_dir: Path = field(default_factory=_templates_dir)
    # Off by default: Team resources in the store are the one source of truth (the repo's teams/
    # are examples that `clawpen apply -f teams/` brings in). Set CLAWPEN_TEAMS_DIR to also serve a
    # directory of the seed's TOML team files, re-read when they change.
    teams_dir: Path | None = None
    resync_seconds: float = 120.0  # a safety net: store and Docker events drive reconciles
    workers: int = field(default_factory=default_workers)
    host: str = "127.0.0.1"
    port: int = 3000
    registration_enabled: bool = False
    snapshot_retention: int = 0  # 0 keeps every snapshot
    import_max_bytes: int = 16 * 1024**3  # the largest agent export `import` accepts (CLAWPEN_IMPORT_MAX_BYTES)
    # Isolation policy (controller.volume_policy, controller.interpolate): off unless the operator opts in.
    host_mounts: str = ""  # CLAWPEN_HOST_MOUNTS: ':'-separated host dirs specs may bind-mount from
    allowed_volumes: str = ""  # CLAWPEN_ALLOWED_VOLUMES: ','-separated named volumes (fnmatch) specs may mount
    interpolate_vars: str = ""  # CLAWPEN_INTERPOLATE_VARS: ','-separated variables `${...}` may read
    isolation: str = "default"  # CLAWPEN_ISOLATION: default | gvisor, for agents whose spec does not say
    gvisor_runtime: str = "runsc"  # CLAWPEN_GVISOR_RUNTIME: the Docker runtime name gVisor is registered as
    gvisor_runtime_class: str = "gvisor"  # CLAWPEN_GVISOR_RUNTIME_CLASS: the Kubernetes RuntimeClass
    auth_recheck_seconds: float = 2.0  # how often an open WebSocket re-checks its credential
    # Single sign-on (OpenID Connect); off unless issuer and client id are set.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    oidc_role_claim: str = "groups"
    oidc_role_map: str = ""  # group=role[:project|project],...
    oidc_scopes: str = "openid profile email groups"
    andor_bridge_url: str = ""  # register agents with this AndOR bridge (empty: off)
    andor_register: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        home = Path(e.get("CLAWPEN_HOME") or DEFAULT_HOME).expanduser()
        kwargs: dict[str, object] = {
            "home": home,
            "instance": e.get("CLAWPEN_INSTANCE") or _default_instance(home),
            "store": e.get("CLAWPEN_STORE", "files"),
            "runtime": e.get("CLAWPEN_RUNTIME", "docker"),
            "namespace": e.get("CLAWPEN_NAMESPACE", "default"),
            "image": e.get("CLAWPEN_IMAGE", f"clawpen/agent:{__version__}"),
            "resync_seconds": float(e.get("CLAWPEN_RESYNC_SECONDS", "120")),
            "workers": int(e.get("CLAWPEN_WORKERS") or default_workers()),
            "registration_enabled": e.get("CLAWPEN_REGISTRATION", "").lower() in ("1", "true", "yes"),
            "snapshot_retention": int(e.get("CLAWPEN_SNAPSHOT_RETENTION", "0")),
            "import_max_bytes": int(e.get("CLAWPEN_IMPORT_MAX_BYTES", str(16 * 1024**3))),
            "host_mounts": e.get("CLAWPEN_HOST_MOUNTS", ""),
            "allowed_volumes": e.get("CLAWPEN_ALLOWED_VOLUMES", ""),
            "interpolate_vars": e.get("CLAWPEN_INTERPOLATE_VARS", ""),
            "isolation": e.get("CLAWPEN_ISOLATION", "") or "default",
            "gvisor_runtime": e.get("CLAWPEN_GVISOR_RUNTIME", "") or "runsc",
            "gvisor_runtime_class": e.get("CLAWPEN_GVISOR_RUNTIME_CLASS", "") or "gvisor",
            "auth_recheck_seconds": float(e.get("CLAWPEN_AUTH_RECHECK_SECONDS", "2")),
            "oidc_issuer": e.get("CLAWPEN_OIDC_ISSUER", ""),
            "oidc_client_id": e.get("CLAWPEN_OIDC_CLIENT_ID", ""),
            "oidc_client_secret": e.get("CLAWPEN_OIDC_CLIENT_SECRET", ""),
            "oidc_role_claim": e.get("CLAWPEN_OIDC_ROLE_CLAIM", "groups"),
            "oidc_role_map": e.get("CLAWPEN_OIDC_ROLE_MAP", ""),
            "oidc_scopes": e.get("CLAWPEN_OIDC_SCOPES", "openid profile email groups"),
            "andor_bridge_url": (e.get("CLAWPEN_ANDOR_BRIDGE_URL") or e.get("ANDOR_BRIDGE__URL") or "").strip(),
            "andor_register": _flag(
                e.get("CLAWPEN_ANDOR_BRIDGE_REGISTER_ON_CREATE") or e.get("ANDOR_BRIDGE__REGISTER_ON_CREATE"), True
            ),
        }
        if e.get("CLAWPEN_TEMPLATES_DIR"):
            kwargs["templates_dir"] = Path(e["CLAWPEN_TEMPLATES_DIR"])
        if e.get("CLAWPEN_TEAMS_DIR"):
            kwargs["teams_dir"] = Path(e["CLAWPEN_TEAMS_DIR"])
        return cls(**kwargs)  # type: ignore[arg-type]

    def volume_policy(self) -> VolumePolicy:
        from controller.volume_policy import VolumePolicy

        return VolumePolicy.from_strings(self.host_mounts, self.allowed_volumes)

    def interpolation_allow(self) -> frozenset[str]:
        return frozenset(v for v in (p.strip() for p in self.interpolate_vars.split(",")) if v)

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.home
