"""`claw-pen.toml`: the seed's configuration file, as one more layer under the environment.

Every setting is an environment variable first (`CLAWPEN_*`, plus Docker's own `DOCKER_HOST`
family): that is what the code reads, what containers and systemd units set, and what tests use.
The file is a friendlier way to write the same values down. Loading it fills in the variables that
the environment leaves unset, so the precedence is flags > environment > file > defaults without a
second settings code path, and a setting added later is configurable from the file as soon as it is
listed in `SETTINGS` below (a test checks that every `CLAWPEN_*` name the code reads is listed).

Keys are the variable's name without the prefix, in kebab case (`resync-seconds`); a table groups
keys by prefix (`[andor-bridge] url` is `CLAWPEN_ANDOR_BRIDGE_URL`). The seed's own keys
(`deployment-mode`, `runtime-socket`, `network-backend`, `tailscale-auth-key`) keep their names.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CONFIG_FILENAME = "claw-pen.toml"
CONFIG_ENV = "CLAWPEN_CONFIG"

Kind = Literal["str", "int", "float", "bool", "path", "list"]


@dataclass(frozen=True)
class Setting:
    env: str
    kind: Kind
    help: str
    default: str = ""
    secret: bool = False
    choices: tuple[str, ...] = ()
    key: str = ""  # the file's key when it is not derived from `env`

    @property
    def file_key(self) -> str:
        if self.key:
            return self.key
        return self.env.removeprefix("CLAWPEN_").lower().replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    # where and what
    Setting("CLAWPEN_HOME", "path", "state directory (files store, secrets, auth)", "~/.local/share/clawpen"),
    Setting("CLAWPEN_INSTANCE", "str", "installation id that names containers, volumes and networks", "from home"),
    Setting("CLAWPEN_STORE", "str", "where specs live", "files", choices=("files", "kube")),
    Setting("CLAWPEN_RUNTIME", "str", "what runs agents", "docker", choices=("docker", "kubernetes")),
    Setting("CLAWPEN_NAMESPACE", "str", "namespace of resources the CLI addresses", "default"),
    Setting("CLAWPEN_IMAGE", "str", "agent image tag", "clawpen/agent:<version>"),
    Setting("CLAWPEN_TEMPLATES_DIR", "path", "directory with agents.yaml and providers.yaml", "shipped"),
    Setting("CLAWPEN_TEAMS_DIR", "path", "directory of example team files", "shipped teams/"),
    Setting("CLAWPEN_RESYNC_SECONDS", "float", "full resync period of the controller", "30"),
    Setting("CLAWPEN_WORKERS", "int", "reconcile workers", "4"),
    Setting("CLAWPEN_WATCH", "str", "file store watch mechanism", "inotify", choices=("inotify", "poll")),
    Setting("CLAWPEN_SNAPSHOT_RETENTION", "int", "snapshots kept per agent (0 = all)", "0"),
    Setting("CLAWPEN_IMPORT_MAX_BYTES", "int", "largest archive `import` accepts (413 above)", "17179869184"),
    Setting("CLAWPEN_WHEELS", "path", "local wheel directory for offline image builds", ""),
    # gateway and auth
    Setting("CLAWPEN_REGISTRATION", "bool", "allow POST /auth/register", "false"),
    Setting("CLAWPEN_ADMIN_PASSWORD", "str", "admin password taken on the first start", "", secret=True),
    Setting("CLAWPEN_AUTH_RECHECK_SECONDS", "float", "how often an open WebSocket re-checks its credential", "2"),
    Setting("CLAWPEN_LOGIN_CONCURRENCY", "int", "Argon2 password verifications at once", "1"),
    Setting("CLAWPEN_OIDC_ISSUER", "str", "OpenID Connect issuer URL (single sign-on)", "off"),
    Setting("CLAWPEN_OIDC_CLIENT_ID", "str", "OpenID Connect client id", ""),
    Setting("CLAWPEN_OIDC_CLIENT_SECRET", "str", "OpenID Connect client secret", "", secret=True),
    Setting("CLAWPEN_OIDC_ROLE_CLAIM", "str", "ID token claim holding groups", "groups"),
    Setting("CLAWPEN_OIDC_ROLE_MAP", "str", "group=role[:project|project],...", ""),
    Setting("CLAWPEN_OIDC_SCOPES", "str", "scopes asked for", "openid profile email groups"),
    Setting(
        "CLAWPEN_TOKEN",
        "str",
        "access or API token: with CLAWPEN_SERVER the CLI's credential; else `clawpen chat team/NAME`'s",
        "minted locally",
        secret=True,
    ),
    Setting("CLAWPEN_SERVER", "str", "a gateway URL: resource commands act there, with the token's role", "local"),
    Setting("CLAWPEN_CREDENTIALS", "path", "where `clawpen login` keeps its token", "~/.config/clawpen/…"),
    Setting("CLAWPEN_SECRET_KEY", "str", "master key of the secret store (base64)", "key file", secret=True),
    # Kubernetes
    Setting("CLAWPEN_KUBECONFIG", "path", "kubeconfig for the kube store/runtime", "$KUBECONFIG / in-cluster"),
    Setting("CLAWPEN_SYSTEM_NAMESPACE", "str", "namespace the operator runs in", "clawpen-system"),
    Setting("CLAWPEN_STORAGE_CLASS", "str", "storage class of agent PVCs", "cluster default"),
    Setting("CLAWPEN_CLUSTER_DOMAIN", "str", "cluster DNS domain", "cluster.local"),
    # isolation policy (README: Security)
    Setting("CLAWPEN_HOST_MOUNTS", "str", "':'-separated host directories specs may bind-mount from", "off"),
    Setting("CLAWPEN_ALLOWED_VOLUMES", "str", "','-separated named volumes (patterns) specs may mount", ""),
    Setting("CLAWPEN_INTERPOLATE_VARS", "str", "','-separated variables `${...}` may read", "CLAWPEN_VAR_* only"),
    Setting(
        "CLAWPEN_ISOLATION",
        "str",
        "kernel isolation of agents whose spec does not say",
        "default",
        choices=("default", "gvisor"),
    ),
    Setting("CLAWPEN_GVISOR_RUNTIME", "str", "Docker runtime name gVisor is registered as", "runsc"),
    Setting("CLAWPEN_GVISOR_RUNTIME_CLASS", "str", "Kubernetes RuntimeClass for gvisor agents", "gvisor"),
    Setting("CLAWPEN_OPENCLAW_IMAGE", "str", "OpenClaw agent image tag", "clawpen/openclaw:<version>"),
    # the engine (seed: deployment modes)
    Setting(
        "CLAWPEN_DEPLOYMENT_MODE",
        "str",
        "seed deployment mode (informative; the engine address decides)",
        "linux-native",
        choices=("linux-native", "windows-wsl", "split"),
        key="deployment-mode",
    ),
    Setting(
        "DOCKER_HOST", "str", "engine address: unix socket, tcp://host:2376 or ssh://", "local", key="runtime-socket"
    ),
    Setting("DOCKER_TLS_VERIFY", "bool", "verify the engine's TLS certificate", "false", key="runtime-tls-verify"),
    Setting(
        "DOCKER_CERT_PATH", "path", "directory with ca.pem, cert.pem, key.pem", "~/.docker", key="runtime-cert-path"
    ),
    Setting("CLAWPEN_PUBLISH_ADDRESS", "str", "host address agent ports are published on", "127.0.0.1 / engine host"),
    Setting("CLAWPEN_ENDPOINT_HOST", "str", "address the gateway uses to reach agents", "127.0.0.1 / engine host"),
    Setting(
        "CLAWPEN_NETWORK_BACKEND",
        "str",
        "per-agent networking",
        "bridge",
        choices=("bridge", "tailscale"),
        key="network-backend",
    ),
    Setting(
        "CLAWPEN_TAILSCALE_AUTH_KEY",
        "str",
        "Tailscale auth key (tailscale backend)",
        "",
        secret=True,
        key="tailscale-auth-key",
    ),
    # AndOR bridge
    Setting("CLAWPEN_ANDOR_BRIDGE_URL", "str", "AndOR bridge to register agents with", "off"),
    Setting("CLAWPEN_ANDOR_BRIDGE_REGISTER_ON_CREATE", "bool", "register agents with the bridge", "true"),
)

# The seed spelled the bridge settings this way; accepted as aliases in the environment.
SEED_ENV_ALIASES = {
    "ANDOR_BRIDGE__URL": "CLAWPEN_ANDOR_BRIDGE_URL",
    "ANDOR_BRIDGE__REGISTER_ON_CREATE": "CLAWPEN_ANDOR_BRIDGE_REGISTER_ON_CREATE",
}

BY_ENV = {s.env: s for s in SETTINGS}
BY_KEY = {s.file_key: s for s in SETTINGS}


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


Source = str  # "env", "file <path>", "default"


@dataclass(frozen=True)
class Effective:
    setting: Setting
    value: str
    source: Source

    def shown(self) -> str:
        if self.setting.secret and self.value and self.source != "default":
            return "********"
        return self.value


def default_path(environ: Mapping[str, str]) -> Path:
    home = Path(environ.get("CLAWPEN_HOME") or "~/.local/share/clawpen").expanduser()
    return home / CONFIG_FILENAME


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{prefix}-{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(_flatten(value, full))
        else:
            flat[full.replace("_", "-")] = value
    return flat


def _as_env_value(setting: Setting, value: Any, where: str) -> str:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {setting.file_key} must be {expected}, got {value!r}")

    kind = setting.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong("true or false")
        text = "true" if value else "false"
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        text = str(value)
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number")
        text = str(value)
    elif kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        text = ",".join(value)
    else:
        if not isinstance(value, str):
            raise wrong("a string")
        text = value
    if setting.choices and text not in setting.choices:
        raise ConfigError(f"{where}: {setting.file_key} must be one of {', '.join(setting.choices)}, got {text!r}")
    if setting.env == "DOCKER_HOST" and text.startswith("/"):
        text = "unix://" + text  # the seed writes a socket path
    return text


def read_file(path: Path) -> dict[str, str]:
    """The file's settings as environment values; every key known and every type right, or ConfigError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    values: dict[str, str] = {}
    for key, value in _flatten(raw).items():
        setting = BY_KEY.get(key)
        if setting is None:
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: `clawpen config view` lists them)")
        values[setting.env] = _as_env_value(setting, value, str(path))
    return values


def _apply_aliases(environ: MutableMapping[str, str]) -> None:
    for alias, env in SEED_ENV_ALIASES.items():
        if alias in environ and env not in environ:
            environ[env] = environ[alias]


def load(environ: MutableMapping[str, str], path: Path | None = None) -> dict[str, Source]:
    """Fill `environ` with the file's values where it has none; returns where each value came from.

    `path` (from `--config`) must exist; the default `$CLAWPEN_HOME/claw-pen.toml` may be absent.
    """
    _apply_aliases(environ)
    explicit = path or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    file_path = explicit or default_path(environ)
    sources: dict[str, Source] = {env: "env" for env in BY_ENV if env in environ}
    if explicit is None and not file_path.exists():
        check_supported(environ)
        return sources
    for env, value in read_file(file_path).items():
        if env not in environ:
            environ[env] = value
            sources[env] = f"file {file_path}"
    if explicit is not None:
        environ[CONFIG_ENV] = str(explicit)
    check_supported(environ)
    return sources


def check_supported(environ: Mapping[str, str]) -> None:
    """Settings this build accepts by name but cannot honour fail here, saying what would be needed."""
    if environ.get("CLAWPEN_NETWORK_BACKEND", "bridge") == "tailscale":
        raise ConfigError(
            'network-backend = "tailscale" is not supported in this build: it needs a tailscaled binary '
            'in each agent\'s network namespace and a Tailscale or Headscale control server; use "bridge"'
        )


def effective(environ: Mapping[str, str], sources: Mapping[str, Source]) -> list[Effective]:
    out = []
    for setting in SETTINGS:
        if setting.env in environ:
            out.append(Effective(setting, environ[setting.env], sources.get(setting.env, "env")))
        else:
            out.append(Effective(setting, setting.default, "default"))
    return out


_SOURCES: dict[str, Source] = {}


def load_process_config(path: Path | None = None) -> None:
    """For the CLI: apply the file to this process's environment once, before any command runs."""
    _SOURCES.clear()
    _SOURCES.update(load(os.environ, path))


def process_sources() -> dict[str, Source]:
    return dict(_SOURCES)
