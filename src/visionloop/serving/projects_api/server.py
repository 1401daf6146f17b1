"""Running the app under uvicorn: in the foreground (``run_server``) or in a thread for tests (``ServerThread``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import uvicorn

from visionloop.core.settings import Settings
from visionloop.serving.app_thread import AppServerThread
from visionloop.serving.projects_api.app import create_app

__all__ = ["ServerThread", "run_server"]


def run_server(
    paths: Path | str | Sequence[Path | str], *, host: str = "127.0.0.1", port: int = 8000,
    settings: Settings | None = None, log_level: str = "info",
) -> None:
    """Serve the projects at ``paths`` on http://host:port until interrupted (Ctrl+C)."""
    app = create_app(paths, settings=settings or Settings())
    uvicorn.run(app, host=host, port=port, log_level=log_level)


class ServerThread(AppServerThread):
    """A real uvicorn server for the project API on 127.0.0.1 and a free port, in a daemon thread; a context manager.

    ``url`` is ``http://127.0.0.1:PORT``. The socket is bound before the thread starts, so there is no port race.
    """

    def __init__(
        self, paths: Path | str | Sequence[Path | str], *, settings: Settings | None = None, host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(create_app(paths, settings=settings or Settings()), host=host,
                         startup_timeout=startup_timeout, stop_timeout=10.0, name="server",
                         thread_prefix="visionloop-server")
