"""Serving: the two HTTP servers of visionloop (FastAPI), each in its own subpackage.

- ``serving.projects_api``: the platform's project API under ``/api/v1`` (projects, images, annotations, classes,
  versions, stats) with ``create_app``, ``run_server`` and ``ServerThread``.
- ``serving.model_server``: model packages behind ``/v1/models/...`` with dynamic batching, tokens, limits and
  Prometheus metrics (``create_inference_app``, ``serve_inference``, ``InferenceServerThread``).

What both share sits here: ``app_thread`` (a uvicorn server in a thread), ``docs`` (offline Swagger UI and ReDoc)
and ``error_handlers`` (visionloop errors as JSON 4xx answers). Nothing is imported by this package itself, so
importing one server never imports the other.
"""

from __future__ import annotations

__all__: list[str] = []
