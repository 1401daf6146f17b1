"""Routes of projects: the list, one project with its stats, its classes."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.deps import ProjectDep, RegistryDep
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.image_queries import count_images
from visionloop.serving.schemas import ClassPublic, ProjectDetailPublic, ProjectPublic, StatsPublic

__all__ = ["router"]

router = APIRouter(prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[ProjectPublic], summary="Projects this server serves")
def list_projects(registry: RegistryDep) -> list[ProjectPublic]:
    return [ProjectPublic(name=p.name, task=p.task.value, images=count_images(p)) for p in registry.all()]


@router.get("/{project}", response_model=ProjectDetailPublic, summary="One project with stats")
def get_project(project: ProjectDep) -> ProjectDetailPublic:
    stats = StatsPublic(**project.stats())
    return ProjectDetailPublic(name=project.name, task=project.task.value, images=stats.images, stats=stats)


@router.get("/{project}/stats", response_model=StatsPublic, summary="Image and instance counts")
def get_stats(project: ProjectDep) -> StatsPublic:
    return StatsPublic(**project.stats())


@router.get(
    "/{project}/classes", response_model=list[ClassPublic],
    summary="The ontology: every class with its flags, retired (inactive) ones included",
)
def list_classes(project: ProjectDep) -> list[ClassPublic]:
    return [ClassPublic(**row) for row in project.ontology().to_json()]
