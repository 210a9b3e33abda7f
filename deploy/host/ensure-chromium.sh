#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/browser): Playwright drives it
# with executable_path=/usr/bin/chromium because `playwright install` cannot download browsers here.
# Idempotent; a fast no-op when chromium is present. Used by `make test`.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "==> installing chromium (Debian package) for the browser tests"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
