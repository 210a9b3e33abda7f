#!/usr/bin/env bash
# Make sure a Docker engine answers on the default socket: install Debian's docker.io when dockerd
# is missing, start dockerd in the background when it is not running. Idempotent; used by `make`.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if docker info >/dev/null 2>&1; then exit 0; fi

live_dockerd() {  # pid → true when it is a running (not zombie) dockerd
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Z]) .*/\1/' "/proc/$pid/stat")
  [ "$state" != "Z" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "dockerd" ]
}

dockerd_running() {  # without procps: scan /proc
  local comm
  for comm in /proc/[0-9]*/comm; do
    [ "$(cat "$comm" 2>/dev/null)" = "dockerd" ] && live_dockerd "$(basename "$(dirname "$comm")")" && return 0
  done
  return 1
}

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
start_dockerd() {
  # dockerd refuses to start while its pid file names an existing process; after a killed daemon
  # that process may be gone, reused by something else, or a zombie nobody reaps. Only a live
  # dockerd counts.
  if [ -f /var/run/docker.pid ] && ! live_dockerd "$(cat /var/run/docker.pid 2>/dev/null)"; then
    $SUDO rm -f /var/run/docker.pid
  fi
  # From / and in a session of its own (setsid): started from a job that is later interrupted or
  # killed as a process group (a test run stopped with Ctrl-C, a CI step's cleanup), dockerd must not
  # go with it, nor depend on the caller's working directory (a checkout that gets deleted).
  $SUDO setsid sh -c 'cd / && nohup dockerd >>/var/log/clawpen-dockerd.log 2>&1 </dev/null &'
}

attempts=0
if ! docker info >/dev/null 2>&1; then
  echo "==> starting dockerd (log: /var/log/clawpen-dockerd.log)"
  start_dockerd
  attempts=1
fi
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && exit 0
  # A daemon killed moments ago may leave its containerd shutting down, and the new dockerd gives
  # up; start it again (a few times) rather than fail the whole run.
  if [ "$attempts" -gt 0 ] && [ "$attempts" -lt 4 ] && ! dockerd_running; then
    sleep 1
    echo "==> dockerd exited; starting it again"
    start_dockerd
    attempts=$((attempts + 1))
  fi
  sleep 0.5
done
echo "dockerd did not answer within 60 s; see /var/log/clawpen-dockerd.log" >&2
exit 1
