"""`limit` / `continue` on list routes, the Kubernetes way, without changing the seed's array bodies.

A list answers a JSON array as before; with `?limit=N` it holds at most N items and, when more
follow, the response carries `X-Continue: <token>` and `Link: <...&continue=<token>>; rel="next"`.
The token is opaque to clients (base64 of the last name served): lists are sorted by name, so the
next page starts after it, and an object created or deleted in between shifts nothing already
served — the same consistency Kubernetes gives a paginated list without a snapshot.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import urlencode

from starlette.requests import Request

from api.errors import invalid
from api.openapi import Query

T = TypeVar("T")
MAX_LIMIT = 1000
PAGE_QUERY = (
    Query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "at most this many; see X-Continue"),
    Query("continue", {"type": "string"}, "the X-Continue token of the previous page"),
)


def _encode(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _decode(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = data["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid([{"field": "continue", "message": "not a token this server handed out"}]) from None


def paginate(request: Request, items: Sequence[T], name: Callable[[T], str]) -> tuple[list[T], dict[str, str]]:
    """The page of `items` (sorted by `name`) the query asks for, and the headers that point onward."""
    raw_limit = request.query_params.get("limit")
    token = request.query_params.get("continue")
    limit: int | None = None
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise invalid([{"field": "limit", "message": f"must be an integer between 1 and {MAX_LIMIT}"}])
    selected = list(items)
    if token:
        after = _decode(token)
        selected = [item for item in selected if name(item) > after]
    if limit is None or len(selected) <= limit:
        return selected, {}
    page = selected[:limit]
    next_token = _encode(name(page[-1]))
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "continue"] + [("continue", next_token)]
    link = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return page, {"X-Continue": next_token, "Link": link}
