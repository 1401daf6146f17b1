"""The web platform: the project API plus the browser app (static ES modules, no build step) on one server.

- ``create_platform_app``: ``serving.projects_api.create_app`` with the web app added: ``GET /`` answers
  ``static/index.html``, ``/static/...`` the files under ``static/`` (``vendor/`` holds the pinned libraries).
- ``PlatformThread``: that app under uvicorn on a free port of 127.0.0.1, in a thread (tests, benchmarks).
- ``run_platform``: serve it in the foreground (``visionloop serve-projects``, ``visionloop demo``).

The static files hold no data, so they answer without credentials; every piece of data goes through ``/api/v1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from visionloop.core.settings import Settings
from visionloop.serving.app_thread import AppServerThread
from visionloop.serving.projects_api.app import create_app
from visionloop.web.static_files import STATIC_DIR, install_static

__all__ = ["STATIC_DIR", "PlatformThread", "create_platform_app", "run_platform"]

Paths = Path | str | Sequence[Path | str]


def create_platform_app(paths: Paths, *, settings: Settings, projects_dir: Path | str | None = None) -> FastAPI:
    """The project API app for the projects at ``paths`` (see ``create_app``) serving the web app at ``/``.

    ``projects_dir`` is where ``POST /api/v1/projects`` creates new projects (default: the setting, else the folder
    of the first served project).
    """
    if projects_dir is not None:
        settings = settings.model_copy(update={"projects_dir": str(projects_dir)})
    app = create_app(paths, settings=settings)
    install_static(app)
    return app


def run_platform(
    paths: Paths, *, host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None,
    log_level: str = "info",
) -> None:
    """Serve the platform for the projects at ``paths`` on http://host:port until interrupted (Ctrl+C)."""
    uvicorn.run(create_platform_app(paths, settings=settings or Settings()), host=host, port=port,
                log_level=log_level)


class PlatformThread(AppServerThread):
    """The platform app under uvicorn on ``host`` and a free port, in a daemon thread; a context manager.

    ``url`` is ``http://127.0.0.1:PORT``; ``url + "/"`` is the web app. ``port``: a given port (0: a free one).
    """

    def __init__(
        self, paths: Paths, *, settings: Settings | None = None, projects_dir: Path | str | None = None,
        host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(create_platform_app(paths, settings=settings or Settings(), projects_dir=projects_dir),
                         host=host, port=port, startup_timeout=startup_timeout, stop_timeout=10.0, name="platform server",
                         thread_prefix="visionloop-platform")
