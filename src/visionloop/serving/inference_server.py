"""Running the inference app under uvicorn: foreground (``serve_inference``) or a background thread (tests, benchmarks).

uvicorn picks httptools and uvloop when installed (they are dependencies): its pure-Python h11 parser alone costs
about a third of the CPU time of a small classifier request.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

__all__ = ["InferenceServerThread", "serve_inference"]


def serve_inference(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info",
                    access_log: bool = False) -> None:
    """Serve ``app`` until interrupted (Ctrl+C)."""
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, loop="auto", http="auto",
                timeout_keep_alive=30)


class InferenceServerThread:
    """A real uvicorn server for ``app`` on ``host`` and a free port, in a daemon thread; a context manager."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", startup_timeout: float = 60.0) -> None:
        self.app, self.host, self.startup_timeout = app, host, startup_timeout
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                                    timeout_keep_alive=30, backlog=512))
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> InferenceServerThread:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._socket, self.port = sock, sock.getsockname()[1]
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"visionloop-inference-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the inference server thread stopped during startup; see its log above")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the inference server did not start within {self.startup_timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> InferenceServerThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
