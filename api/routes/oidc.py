"""/auth/oidc/*: single sign-on (placeholder until the OIDC client lands)."""

from __future__ import annotations

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []
