#!/bin/sh
# Start the OpenClaw gateway. Secrets reach it from their files under /run/secrets into this
# process's environment only (never the container's config, so `docker inspect` cannot show them):
# the per-agent token as OpenClaw's gateway token, and every upper-case secret (API keys) under its
# own name, which the rendered config refers to as env SecretRefs.
set -eu
secrets=/run/secrets
if [ -r "$secrets/clawpen-agent-token" ]; then
  OPENCLAW_GATEWAY_TOKEN=$(cat "$secrets/clawpen-agent-token")
  export OPENCLAW_GATEWAY_TOKEN
fi
for file in "$secrets"/*; do
  name=${file##*/}
  case "$name" in
    *[!A-Z0-9_]* | [!A-Z]*) continue ;;  # only names that are valid env SecretRef ids
  esac
  [ -f "$file" ] && [ -r "$file" ] || continue
  value=$(cat "$file")
  export "$name=$value"
done
mkdir -p "${OPENCLAW_STATE_DIR:-/data/openclaw}"
exec node /opt/openclaw/node_modules/openclaw/openclaw.mjs gateway run --bind lan --port 18789
