"""The platform's project API (FastAPI) under ``/api/v1``: projects, images, annotations, classes, versions, stats.

- ``app``: ``create_app`` (state on ``app.state``: settings, the open projects), ``API_PREFIX``
- ``deps``: typed dependencies (``SettingsDep``, ``RegistryDep``, ``ProjectDep``, ``PageDep``, ``ImageId``)
- ``routes``: one router per resource (``routes.api_router`` gathers those under ``/api/v1``)
- ``schemas``: request and response bodies; ``image_queries``, ``thumbnails``, ``project_registry``: what routes use
- ``server``: ``run_server`` (foreground) and ``ServerThread`` (tests)
"""

from __future__ import annotations

__all__: list[str] = []
