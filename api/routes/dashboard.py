"""The web dashboard: static files shipped inside the `api` package, served at `/`.

No build step and no CDN: the files in api/dashboard/ are the files the browser runs (ES modules,
one stylesheet, icons), so a wheel carries a working UI and nothing is fetched at run time. The
pages hold no data; everything comes from /api with a bearer token the page keeps in
sessionStorage, so these routes are public. The service worker and the manifest sit at the root
because a worker's scope is its own path: served from / it may cache the shell for the whole app.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

DASHBOARD_PACKAGE = ("api", "dashboard")
_files = StaticFiles(packages=[DASHBOARD_PACKAGE])


def _file(name: str, media_type: str | None = None) -> Response:
    path, _ = _files.lookup_path(name)
    if not path:
        return Response("not found", status_code=404)
    # The shell is revalidated on each load (a new version is picked up at once; 304 otherwise).
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})


async def index(request: Request) -> Response:
    return _file("index.html", "text/html; charset=utf-8")


async def manifest(request: Request) -> Response:
    return _file("manifest.webmanifest", "application/manifest+json")


async def service_worker(request: Request) -> Response:
    return _file("sw.js", "text/javascript; charset=utf-8")


ROUTES = [
    # Pages and files, not API operations: kept out of /openapi.json.
    Route("/", index, methods=["GET"], include_in_schema=False),
    Route("/manifest.webmanifest", manifest, methods=["GET"], include_in_schema=False),
    Route("/sw.js", service_worker, methods=["GET"], include_in_schema=False),
    Mount("/ui", app=_files, name="dashboard"),
]
