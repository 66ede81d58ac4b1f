"""The dashboard: one HTML page and its script and style, all in the package (no build step, no CDN).

The page holds no data, so it is served without a token; everything it shows comes from the /api/ routes,
called with the token the user typed (kept in sessionStorage, sent as `Authorization: Bearer`). Its forms
are built in the browser from /openapi.json's request schemas, so a new job kind or config field shows up
without editing the page.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ._errors import error_response

UI_DIR = Path(__file__).resolve().parent / "ui"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
"""The files /ui/static/ serves: only these names, nothing else from the directory or beyond it."""
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer"}


async def page(request: Request) -> Response:
    return FileResponse(UI_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return error_response(404, f"no dashboard asset {name!r}", {"type": "NotFound"})
    return FileResponse(UI_DIR / name, media_type=ASSETS[name], headers=_HEADERS)


def dashboard_routes() -> list[Route]:
    return [Route("/ui", page, methods=["GET"]), Route("/ui/static/{name}", asset, methods=["GET"])]
