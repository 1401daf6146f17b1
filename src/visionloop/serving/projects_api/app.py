"""The platform server's FastAPI app: the project read API (plus annotation saves) under ``/api/v1``.

``create_app`` finds the project directories at once (so a wrong path fails before the server starts) and opens
the projects in the app's lifespan, keeping them open until shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from visionloop import __version__
from visionloop.core.settings import Settings
from visionloop.serving.body_limit import install_body_limit
from visionloop.serving.docs import docs_app_options, install_offline_docs, offline_assets_dir
from visionloop.serving.error_handlers import install_error_handlers
from visionloop.serving.jobs import JobQueue
from visionloop.serving.jobs.kinds import (
    embed_after_import,
    evaluate_after_training,
    loop_after_drift,
    package_after_evaluation,
)
from visionloop.serving.projects_api.deployments import Deployments, deploy_after_packaging
from visionloop.serving.projects_api.project_registry import ProjectRegistry, find_project_dirs
from visionloop.serving.projects_api.routes import API_PREFIX, api_router, health
from visionloop.serving.projects_api.routes.imports import IMPORTS_PATH
from visionloop.serving.projects_api.thumbnails import ThumbnailCache, snap_size
from visionloop.serving.webhooks import WebhookWorker

__all__ = ["API_PREFIX", "create_app"]


def create_app(projects_root: Path | str | Sequence[Path | str], *, settings: Settings) -> FastAPI:
    """App serving the projects at ``projects_root``: project directories, or folders of project directories.

    Routes: ``GET /health``, ``/api/v1/projects/...`` (see ``/docs``). Raises NotFoundError when a path holds no
    project.
    """
    dirs = find_project_dirs(projects_root)
    snap_size(settings.thumbnail_size)  # a default size above the largest is refused before the server starts

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ProjectRegistry.open(dirs, settings=settings)
        app.state.projects = registry
        app.state.thumbnails = {p.name: ThumbnailCache(p, max_bytes=settings.thumbnail_cache_bytes)
                                for p in registry.all()}
        app.state.deployments = Deployments(settings)
        app.state.jobs = JobQueue(registry, settings, follow_ups={
            "train": evaluate_after_training, "evaluate": package_after_evaluation, "import": embed_after_import,
            "package": deploy_after_packaging(app.state.deployments), "drift": loop_after_drift})
        app.state.jobs.start()
        app.state.webhooks = WebhookWorker(registry.all, settings=settings)  # sends events' webhook deliveries
        app.state.webhooks.start()
        try:
            yield
        finally:
            app.state.webhooks.stop()
            app.state.jobs.stop()
            app.state.deployments.close()
            app.state.jobs = app.state.deployments = app.state.webhooks = None
            app.state.projects = None
            app.state.thumbnails = {}
            registry.close()

    assets = offline_assets_dir()
    app = FastAPI(
        title="visionloop", version=__version__, lifespan=lifespan,
        description="Projects, images, thumbnails, annotations, classes, dataset versions and stats.",
        **docs_app_options(assets),
    )
    app.state.settings = settings
    app.state.projects_dir = Path(settings.projects_dir) if settings.projects_dir else dirs[0].resolve().parent
    app.state.projects = None
    app.state.thumbnails = {}
    if assets is not None:
        install_offline_docs(app, assets)
    install_error_handlers(app)
    install_body_limit(app, settings.api_max_body_bytes,
                       larger={IMPORTS_PATH: (settings.import_max_bytes, "import_max_bytes")})
    app.include_router(health.router)
    app.include_router(api_router)
    return app
