"""The web app's static files: ``GET /`` answers ``index.html``, ``/static/<path>`` a file under ``static/``.

Cache headers: the app's own files (``index.html``, ``app.css``, ``js/``) change with every release and keep their
names, so the browser revalidates them on each use (``no-cache`` with an ETag: a 304 costs one round trip);
``vendor/`` holds pinned library builds that change only with a new release of visionloop, so they are kept a day.
Directories are never listed; a missing file is a 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CSP", "INDEX_CACHE", "STATIC_DIR", "VENDOR_CACHE", "CachedStaticFiles", "install_static"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_CACHE = "no-cache"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
"""The app page's Content-Security-Policy: scripts only from this server's files (no inline script, no eval, no
CDN), no plugins, not framed. Inline styles stay allowed: the canvas and chart libraries position their elements
with ``style`` attributes."""
VENDOR_CACHE = "public, max-age=86400"


class CachedStaticFiles(StaticFiles):
    """``StaticFiles`` (ETag, Last-Modified, 304, no directory listing) with the Cache-Control described above."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = VENDOR_CACHE if path.startswith("vendor/") else INDEX_CACHE
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def install_static(app: FastAPI, directory: Path = STATIC_DIR) -> None:
    """Add ``GET /`` (the app's page) and the ``/static`` mount to ``app``."""
    index = directory / "index.html"

    @app.get("/", include_in_schema=False)
    def web_app() -> Any:
        return FileResponse(index, media_type="text/html", headers={
            "Cache-Control": INDEX_CACHE, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Content-Security-Policy": CSP})

    app.mount("/static", CachedStaticFiles(directory=directory, html=False), name="static")
