"""One router per resource of the project API; ``api_router`` gathers them under ``API_PREFIX``.

``health`` stays outside the prefix (``GET /health``) and is included by the app itself.

No ``from __future__ import annotations`` here: it would bind the name ``annotations`` that the router module of
that name needs.
"""

from fastapi import APIRouter

from visionloop.serving.projects_api.routes import annotations, classes, images, projects, stats, versions

__all__ = ["API_PREFIX", "api_router"]

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
for _module in (projects, stats, classes, images, annotations, versions):
    api_router.include_router(_module.router)
