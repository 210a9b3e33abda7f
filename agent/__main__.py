"""`python -m agent`: serve the chat contract on 0.0.0.0:$CLAWPEN_AGENT_PORT (default 8080).

Pure-Python server stack (uvicorn with h11, asyncio loop) so the image needs no compiled wheels.
A bad setting is reported in one line and exits non-zero, so `docker logs` says what is wrong.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from agent.app import create_app
from agent.config import AgentConfig


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
    try:
        config = AgentConfig.from_env()
    except ValueError as err:
        print(f"agent: bad configuration: {err}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(config),
        host="0.0.0.0",
        port=config.port,
        http="h11",
        loop="asyncio",
        lifespan="on",
        log_level="info",
        access_log=False,  # the app logs one line per chat turn; health probes would drown them
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
