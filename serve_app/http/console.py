"""The web console: its static files under ``/ui``, each with a strict Content-Security-Policy.

The files are public (a browser cannot send a bearer token when it navigates); every call
the console then makes to the API carries the token and meets the same checks as curl.
They are read into memory once, when the app is built, and served by exact name from that
table, so no request path (``..``, encoded or not) can reach a file outside the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response

from serve_app.auth.rbac import GRANTS
from serve_app.errors import NotFound
from serve_app.http.problems import problem_response
from serve_app.registry.status import PROMOTIONS, ROLLBACK_FROM
from serve_app.settings import Settings

PREFIX = "/ui"
STATIC = Path(__file__).resolve().parent.parent / "console"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
"""The only files served: anything else in the folder stays unreachable."""
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # blob: shows the image a clinician just picked, without sending it anywhere.
        "img-src 'self' blob:",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def static_files(root: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """Every servable file under ``root`` by its ``/``-separated relative path."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), MEDIA_TYPES[path.suffix])
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


def console_config(settings: Settings) -> dict[str, Any]:
    """What the console needs to know before it calls the API: which role holds which
    permission (to say which role a page needs), the lifecycle's legal moves (to offer
    only those) and the models this server serves. Derived here so the page never keeps
    a copy of a table that could drift."""
    return {
        "grants": {role.value: sorted(p.value for p in perms) for role, perms in GRANTS.items()},
        "promotions": {status.value: sorted(to) for status, to in PROMOTIONS.items()},
        "rollback_from": sorted(ROLLBACK_FROM),
        "models": [model.name for model in settings.models],
        "default_model": settings.default_model,
    }


def install_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console on ``app`` (its own routes, left out of the OpenAPI schema: they
    are pages, not API)."""
    files = static_files()
    config = console_config(settings)

    @app.get(PREFIX, include_in_schema=False)
    async def console_root() -> Response:
        return RedirectResponse(f"{PREFIX}/", headers=SECURITY_HEADERS)

    @app.get(f"{PREFIX}/config.json", include_in_schema=False)
    async def console_settings() -> Response:
        return JSONResponse(config, headers=SECURITY_HEADERS)

    @app.get(PREFIX + "/{path:path}", include_in_schema=False)
    async def console_file(path: str) -> Response:
        found = files.get(path or "index.html")
        if found is None:
            response = problem_response(
                NotFound("no such console file", field="path", rule="exists")
            )
            response.headers.update(SECURITY_HEADERS)
            return response
        content, media_type = found
        return Response(content=content, media_type=media_type, headers=SECURITY_HEADERS)
