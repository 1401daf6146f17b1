"""A real uvicorn server for any ASGI app on a free port, in a daemon thread (tests, benchmarks).

Shared by ``projects_api.server.ServerThread`` and ``model_server.server.InferenceServerThread``;
it imports neither app, so importing it stays cheap.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = ["AppServerThread"]


class AppServerThread:
    """Run ``app`` under uvicorn on ``host`` and a free port in a daemon thread; use as a context manager.

    ``url`` is ``http://HOST:PORT``. The socket is bound before the thread starts, so there is no port race.
    ``port``: bind that port instead of a free one (a server restarted where its clients expect it).
    ``name`` names the server in error messages; the thread is named ``<thread_prefix>-<port>``;
    ``stop_timeout`` is how long ``stop`` waits for the thread, in seconds; ``uvicorn_options`` go to
    ``uvicorn.Config`` (``log_level`` defaults to ``"warning"``, ``lifespan`` to ``"on"``).
    """

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", startup_timeout: float = 30.0, stop_timeout: float = 10.0,
        name: str = "server", thread_prefix: str = "visionloop-server", port: int = 0, **uvicorn_options: Any,
    ) -> None:
        self.app, self.host, self.startup_timeout = app, host, startup_timeout
        self.stop_timeout, self.name, self.thread_prefix = stop_timeout, name, thread_prefix
        options: dict[str, Any] = {"log_level": "warning", "lifespan": "on", **uvicorn_options}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self._socket, self.port = sock, sock.getsockname()[1]
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"{self.thread_prefix}-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} thread stopped during startup; see its log above")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the {self.name} did not start within {self.startup_timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self.stop_timeout)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
