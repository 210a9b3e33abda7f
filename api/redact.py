"""Keep access tokens out of server logs.

Browsers pass the WebSocket token as `?token=`, and uvicorn logs each WebSocket's path with its
query string; a token in a log file is a credential anyone with the log can replay for 24 h. This
filter rewrites such values on uvicorn's loggers before any handler sees them.
"""

from __future__ import annotations

import logging
import re

TOKEN_IN_QUERY = re.compile(r"((?:access_|refresh_)?token=)[^&\s\"']+")
LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn")


def redact(text: str) -> str:
    return TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Idempotent: attach the filter once to each uvicorn logger."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
