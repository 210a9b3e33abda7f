#!/usr/bin/env bash
# Make sure a Docker engine answers on the default socket: install Debian's docker.io when dockerd
# is missing, start dockerd in the background when it is not running. Idempotent; used by `make`.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if docker info >/dev/null 2>&1; then exit 0; fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "==> installing the Docker engine (Debian package docker.io)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker || true
  fi
fi
if ! docker info >/dev/null 2>&1; then
  echo "==> starting dockerd (log: /var/log/clawpen-dockerd.log)"
  # A stale pid file from a killed daemon does not block a restart, but remove it to be tidy.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    $SUDO rm -f /var/run/docker.pid
  fi
  $SUDO sh -c 'nohup dockerd >/var/log/clawpen-dockerd.log 2>&1 &'
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not answer within 30 s; see /var/log/clawpen-dockerd.log" >&2
exit 1
