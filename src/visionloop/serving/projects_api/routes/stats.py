"""Route of a project's stats: image, annotated-image and instance counts per class."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.schemas import StatsPublic

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/stats", tags=["stats"], responses=ERROR_RESPONSES)


@router.get("", response_model=StatsPublic, summary="Image and instance counts")
def get_stats(project: ProjectDep) -> StatsPublic:
    return StatsPublic(**project.stats())
