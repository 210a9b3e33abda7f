#!/usr/bin/env bash
# A real OpenID Connect provider for the SSO tests: the npm registry's certified `oidc-provider`,
# installed once into a cache directory (no-op when present). Needs node >= 20 and npm.
# Prints nothing on success; the tests find it at $CLAWPEN_OIDC_PROVIDER_DIR (default below).
set -euo pipefail
DIR="${CLAWPEN_OIDC_PROVIDER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawpen/oidc-provider}"
VERSION="9.13.3"
if [ -f "$DIR/node_modules/oidc-provider/package.json" ] \
   && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/oidc-provider/package.json"; then
  exit 0
fi
command -v npm >/dev/null || { echo "ensure-oidc-provider: npm is missing (apt-get install -y npm)" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"name":"clawpen-oidc-test-provider","private":true}' > package.json
npm install --no-audit --no-fund --silent "oidc-provider@$VERSION" >/dev/null
