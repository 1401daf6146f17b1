"""Running the inference app under uvicorn: foreground (``serve_inference``) or a background thread (tests, benchmarks).

uvicorn picks httptools and uvloop when installed (they are dependencies): its pure-Python h11 parser alone costs
about a third of the CPU time of a small classifier request.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from visionloop.serving.app_thread import AppServerThread

__all__ = ["InferenceServerThread", "serve_inference"]


def serve_inference(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info",
                    access_log: bool = False) -> None:
    """Serve ``app`` until interrupted (Ctrl+C)."""
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, loop="auto", http="auto",
                timeout_keep_alive=30)


class InferenceServerThread(AppServerThread):
    """A real uvicorn server for ``app`` on ``host`` and a free port, in a daemon thread; a context manager."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", startup_timeout: float = 60.0) -> None:
        super().__init__(app, host=host, startup_timeout=startup_timeout, stop_timeout=15.0, name="inference server",
                         thread_prefix="visionloop-inference", access_log=False, timeout_keep_alive=30, backlog=512)
