"""Serving: the platform's HTTP API (FastAPI).

The project API lives in ``serving.app`` (``create_app``) with one ``routes_*`` module per resource;
``serving.server`` runs it under uvicorn (``run_server``, ``ServerThread``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerThread", "create_app", "run_server"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing a sibling module (e.g. inference serving) does not import the project API.
    if name == "create_app":
        from visionloop.serving.app import create_app

        return create_app
    if name in {"run_server", "ServerThread"}:
        from visionloop.serving import server

        return getattr(server, name)
    raise AttributeError(f"module 'visionloop.serving' has no attribute {name!r}")
