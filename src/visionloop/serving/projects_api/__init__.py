"""The platform's project API (FastAPI) under ``/api/v1``: projects, images, annotations, classes, versions, stats.

- ``app``: ``create_app`` (state on ``app.state``: settings, the open projects, their thumbnail caches; a request body
  limit for the whole app), ``API_PREFIX``
- ``deps``: typed dependencies (``SettingsDep``, ``RegistryDep``, ``ProjectDep``, ``ThumbnailsDep``, ``PageDep``,
  ``ImageId``); ``auth``: who may call what
- ``routes``: one router per resource (``routes.api_router`` gathers those under ``/api/v1``)
- ``schemas``: request and response bodies; ``image_queries``, ``thumbnails``, ``project_registry``: what routes use
- ``server``: ``run_server`` (foreground) and ``ServerThread`` (tests)
"""

from __future__ import annotations

__all__: list[str] = []
