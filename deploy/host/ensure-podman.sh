#!/usr/bin/env bash
# Make sure a rootful Podman answers on its Docker-compatible socket (for the Podman test suite).
# Idempotent: installs Debian's podman only when missing; starts `podman system service` only when
# the socket does not answer. Prints the DOCKER_HOST to use.
set -euo pipefail
SOCK=${CLAWPEN_PODMAN_SOCKET:-/run/clawpen-podman/podman.sock}
LOG=${CLAWPEN_PODMAN_LOG:-/tmp/clawpen-podman.log}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

answers() { curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }

if ! command -v podman >/dev/null 2>&1 || ! [ -x /usr/libexec/podman/catatonit ]; then
  echo "ensure-podman: installing Debian's podman" >&2
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq podman catatonit >/dev/null
fi
if ! answers; then
  $SUDO mkdir -p "$(dirname "$SOCK")"
  # netavark needs iptables; cgroupfs because there is no systemd here; --time=0 never exits idle.
  # From / and in a session of its own: conmon inherits the service's working directory (a deleted
  # checkout breaks every container start: "Failed to get working directory"), and a job that
  # happened to start it must not take it down when it is interrupted.
  $SUDO setsid sh -c "cd / && nohup podman --cgroup-manager=cgroupfs --events-backend=file system service --time=0 \
      unix://$SOCK >'$LOG' 2>&1 </dev/null &"
  for _ in $(seq 1 50); do answers && break; sleep 0.2; done
  answers || { echo "ensure-podman: podman service did not answer on $SOCK; see $LOG" >&2; exit 1; }
fi
echo "unix://$SOCK"
