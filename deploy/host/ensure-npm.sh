#!/usr/bin/env bash
# Make sure npm is on the host: the OpenClaw image gets Node and OpenClaw from the npm registry
# (`clawpen image build --program openclaw`). Installs Debian's npm only when missing; a no-op otherwise.
set -euo pipefail
command -v npm >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "==> installing npm (Debian package npm)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
