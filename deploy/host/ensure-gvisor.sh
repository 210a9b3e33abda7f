#!/usr/bin/env bash
# Make gVisor (runsc) available to the Docker engine as the runtime `runsc`, for agents with
# `spec.isolation: gvisor`. Installs Debian's runsc when missing, registers it in
# /etc/docker/daemon.json with runtimeArgs ["--network=host"] (this runsc refuses to run with
# networking in the root network namespace otherwise; Docker's bridge still isolates the container),
# then asks dockerd to reload its configuration (SIGHUP: running containers are untouched).
# Idempotent and a fast no-op when Docker already lists the runtime. Used by `make test`.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
RUNTIME="${CLAWPEN_GVISOR_RUNTIME:-runsc}"
DAEMON_JSON="${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"

has_runtime() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q "\"$RUNTIME\""; }

if has_runtime; then exit 0; fi

if ! command -v runsc >/dev/null 2>&1; then
  echo "==> installing gVisor (Debian package runsc)"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq runsc >/dev/null
fi
RUNSC_PATH="$(command -v runsc)"

echo "==> registering $RUNSC_PATH as Docker runtime '$RUNTIME' in $DAEMON_JSON"
$SUDO mkdir -p "$(dirname "$DAEMON_JSON")"
$SUDO python3 - "$DAEMON_JSON" "$RUNTIME" "$RUNSC_PATH" <<'PY'
import json, os, sys
path, name, binary = sys.argv[1:4]
try:
    with open(path) as f:
        config = json.load(f)
except FileNotFoundError:
    config = {}
config.setdefault("runtimes", {})[name] = {"path": binary, "runtimeArgs": ["--network=host"]}
tmp = path + ".clawpen.tmp"
with open(tmp, "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
PY

# Reload dockerd's configuration (runtimes are reloadable); never restart or kill it.
pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
  $SUDO kill -HUP "$pid"
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active docker >/dev/null 2>&1; then
  $SUDO systemctl reload docker
fi
for _ in $(seq 1 50); do
  has_runtime && exit 0
  sleep 0.1
done
echo "Docker did not pick up the '$RUNTIME' runtime; check $DAEMON_JSON and the dockerd log" >&2
exit 1
