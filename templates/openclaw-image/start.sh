#!/bin/sh
# Start the OpenClaw gateway. The gateway token comes from its secret file into this process's
# environment only (never the container's config, so `docker inspect` cannot show it).
set -eu
token_file=/run/secrets/clawpen-agent-token
if [ -r "$token_file" ]; then
  OPENCLAW_GATEWAY_TOKEN=$(cat "$token_file")
  export OPENCLAW_GATEWAY_TOKEN
fi
mkdir -p "${OPENCLAW_STATE_DIR:-/data/openclaw}"
exec node /opt/openclaw/node_modules/openclaw/openclaw.mjs gateway run --bind lan --port 18789
