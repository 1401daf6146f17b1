"""Running the app under uvicorn: in the foreground (``run_server``) or in a thread for tests (``ServerThread``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import uvicorn

from visionloop.core.settings import Settings
from visionloop.serving.app import create_app

__all__ = ["ServerThread", "run_server"]


def run_server(
    paths: Path | str | Sequence[Path | str], *, host: str = "127.0.0.1", port: int = 8000,
    settings: Settings | None = None, log_level: str = "info",
) -> None:
    """Serve the projects at ``paths`` on http://host:port until interrupted (Ctrl+C)."""
    app = create_app(paths, settings=settings or Settings())
    uvicorn.run(app, host=host, port=port, log_level=log_level)


class ServerThread:
    """A real uvicorn server on 127.0.0.1 and a free port, in a daemon thread; use as a context manager.

    ``url`` is ``http://127.0.0.1:PORT``. The socket is bound before the thread starts, so there is no port race.
    """

    def __init__(
        self, paths: Path | str | Sequence[Path | str], *, settings: Settings | None = None, host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
    ) -> None:
        self.app = create_app(paths, settings=settings or Settings())
        self.host, self.startup_timeout = host, startup_timeout
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._socket, self.port = sock, sock.getsockname()[1]
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"visionloop-server-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread stopped during startup; see its log above")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server did not start within {self.startup_timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
