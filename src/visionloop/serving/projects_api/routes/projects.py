"""Routes of projects: the list of served projects and one project with its stats."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import SignedInDep, ViewerDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.image_queries import count_images
from visionloop.serving.projects_api.schemas import ProjectDetailPublic, ProjectPublic, StatsPublic

__all__ = ["router"]

router = APIRouter(prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[ProjectPublic], summary="The served projects where the credentials hold")
def list_projects(access: SignedInDep) -> list[ProjectPublic]:
    return [ProjectPublic(name=p.name, task=p.task.value, images=count_images(p)) for p, _ in access]


@router.get("/{project}", response_model=ProjectDetailPublic, summary="One project with stats")
def get_project(_: ViewerDep, project: ProjectDep) -> ProjectDetailPublic:
    stats = StatsPublic(**project.stats())
    return ProjectDetailPublic(name=project.name, task=project.task.value, images=stats.images, stats=stats)
