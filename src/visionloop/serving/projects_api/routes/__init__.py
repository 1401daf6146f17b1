"""One router per resource of the project API; ``api_router`` gathers them under ``API_PREFIX``.

``health`` stays outside the prefix (``GET /health``) and is included by the app itself.

Who may call what (see ``projects_api.auth``): the routers of a project's resources are included with
``dependencies=[VIEWER]`` (a signed-in user of the project in the URL); routes that write ask for a stronger role
themselves (``AnnotatorDep``, ...). ``auth`` (sign-in, sign-out), ``projects`` and ``users`` declare theirs per route.

No ``from __future__ import annotations`` here: it would bind the name ``annotations`` that the router module of
that name needs.
"""

from fastapi import APIRouter

from visionloop.serving.projects_api.auth import AUTH_RESPONSES, VIEWER
from visionloop.serving.projects_api.routes import (
    active,
    annotations,
    annotators,
    assist,
    auth,
    classes,
    deployment,
    dismissals,
    drift,
    events,
    exports,
    formats,
    health_stats,
    image_bulk,
    images,
    imports,
    jobs,
    label_errors,
    loop,
    outliers,
    packages,
    production,
    projects,
    runs,
    session,
    similar,
    stats,
    suggestions,
    tiles,
    train,
    users,
    versions,
    webhooks,
    work,
)

__all__ = ["API_PREFIX", "api_router"]

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX, responses=AUTH_RESPONSES)
for _module in (auth, session, formats, projects, users):
    api_router.include_router(_module.router)
for _module in (stats, classes, images, image_bulk, tiles, annotations, versions):
    api_router.include_router(_module.router, dependencies=[VIEWER])
for _module in (jobs, imports, exports, train, runs, packages, deployment):  # background work, models
    api_router.include_router(_module.router, dependencies=[VIEWER])
api_router.include_router(suggestions.router, dependencies=[VIEWER])
for _module in (work, annotators):  # assignment, review, honeypots, consensus, annotator statistics
    api_router.include_router(_module.router, dependencies=[VIEWER])
api_router.include_router(assist.router, dependencies=[VIEWER])  # assisted segmentation
api_router.include_router(similar.router, dependencies=[VIEWER])  # more like this, duplicates, embed job
api_router.include_router(health_stats.router, dependencies=[VIEWER])  # dataset health figures
for _module in (label_errors, outliers, dismissals):  # what is wrong in the data: fix or set aside
    api_router.include_router(_module.router, dependencies=[VIEWER])
api_router.include_router(active.router, dependencies=[VIEWER])  # active learning: what to label next
api_router.include_router(drift.router, dependencies=[VIEWER])  # drift reports, checks, metrics
api_router.include_router(loop.router, dependencies=[VIEWER])  # retrain and compare: cycles, reports
api_router.include_router(production.router, dependencies=[VIEWER])  # images sent back by model servers
for _module in (events, webhooks):  # events for other systems, and the webhooks (admins) that deliver them
    api_router.include_router(_module.router, dependencies=[VIEWER])
