"""Typed FastAPI dependencies: the open projects, one project by its URL name and its thumbnail cache, the
settings, paging."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request

from visionloop.core.settings import Settings
from visionloop.serving.projects_api.project_registry import ProjectRegistry
from visionloop.serving.projects_api.thumbnails import ThumbnailCache
from visionloop.storage.project import Project

__all__ = [
    "DEFAULT_PAGE",
    "MAX_ID",
    "MAX_PAGE",
    "ImageId",
    "Page",
    "PageDep",
    "ProjectDep",
    "ProjectsDirDep",
    "RegistryDep",
    "SettingsDep",
    "ThumbnailsDep",
    "get_project",
    "get_projects_dir",
    "get_registry",
    "get_settings",
    "get_thumbnails",
]

DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_ID = 2**63 - 1
"""Largest id or offset the database can hold (SQL BIGINT); larger numbers are refused as invalid input."""

ImageId = Annotated[int, Path(ge=1, le=MAX_ID, description="Image id, as the image list gives it.")]


def get_registry(request: Request) -> ProjectRegistry:
    registry = getattr(request.app.state, "projects", None)
    if registry is None:
        raise HTTPException(
            status_code=503,
            detail="the projects are not open yet: run the app with its lifespan (uvicorn, or `with TestClient(app)`)",
        )
    return registry


RegistryDep = Annotated[ProjectRegistry, Depends(get_registry)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_projects_dir(request: Request) -> FsPath:
    """Where new projects are made (``Settings.projects_dir``, else the folder of the first served project)."""
    return request.app.state.projects_dir


ProjectsDirDep = Annotated[FsPath, Depends(get_projects_dir)]


def get_project(
    registry: RegistryDep, project: Annotated[str, Path(description="Project name, as GET /projects lists it.")]
) -> Project:
    return registry.get(project)


ProjectDep = Annotated[Project, Depends(get_project)]


def get_thumbnails(request: Request, project: ProjectDep) -> ThumbnailCache:
    """The project's thumbnail cache, made on first use for a project created while the server runs."""
    caches: dict[str, ThumbnailCache] = request.app.state.thumbnails
    cache = caches.get(project.name)
    if cache is None:
        with _THUMBNAILS_LOCK:
            cache = caches.get(project.name)
            if cache is None:
                cache = caches[project.name] = ThumbnailCache(
                    project, max_bytes=request.app.state.settings.thumbnail_cache_bytes)
    return cache


_THUMBNAILS_LOCK = threading.Lock()


ThumbnailsDep = Annotated[ThumbnailCache, Depends(get_thumbnails)]


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int


def get_page(
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Items per page (max {MAX_PAGE}).")] = DEFAULT_PAGE,
) -> Page:
    return Page(offset=offset, limit=limit)


PageDep = Annotated[Page, Depends(get_page)]
