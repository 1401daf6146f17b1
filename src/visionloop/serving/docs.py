"""OpenAPI docs pages that work offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc`` from local assets.

FastAPI's default pages load Swagger UI and ReDoc from a CDN, which air-gapped machines cannot reach. The
``fastapi-offline`` package (MIT) ships Swagger UI 5 (needed for the OpenAPI 3.1 documents FastAPI writes) and
ReDoc 2; its asset folder is mounted at ``/docs-assets``. Without that package the app keeps FastAPI's CDN pages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "DOCS_URL", "REDOC_URL", "docs_app_options", "install_offline_docs", "offline_assets_dir"]

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"


def offline_assets_dir() -> Path | None:
    """Folder with swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png, if installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    needed = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
    return folder if all((folder / n).is_file() for n in needed) else None


def docs_app_options(assets: Path | None) -> dict[str, str | None]:
    """``FastAPI(...)`` options for docs pages: none of FastAPI's own (CDN) pages when ``assets`` are installed."""
    return {"docs_url": None, "redoc_url": None} if assets else {"docs_url": DOCS_URL, "redoc_url": REDOC_URL}


def install_offline_docs(app: FastAPI, assets: Path) -> None:
    """Serve /docs and /redoc from ``assets`` (see :func:`offline_assets_dir`).

    The app must be made with ``docs_app_options(assets)`` so FastAPI's CDN pages do not take those paths.
    """
    if app.openapi_url is None:
        return
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = app.openapi_url
    oauth2_url = app.swagger_ui_oauth2_redirect_url

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_url}" if oauth2_url else None,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if oauth2_url:
        @app.get(oauth2_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False,
        )
