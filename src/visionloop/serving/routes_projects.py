"""Routes of projects: the list, one project with its stats, its classes."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.deps import ProjectDep, RegistryDep
from visionloop.serving.image_queries import count_images
from visionloop.serving.schemas import ClassPublic, ErrorPublic, ProjectDetailPublic, ProjectPublic, StatsPublic

__all__ = ["router"]

router = APIRouter(prefix="/projects", tags=["projects"])

_NOT_FOUND = {404: {"model": ErrorPublic, "description": "Unknown project (the body lists the known ones)."}}


@router.get("", response_model=list[ProjectPublic], summary="Projects this server serves")
def list_projects(registry: RegistryDep) -> list[ProjectPublic]:
    return [ProjectPublic(name=p.name, task=p.task.value, images=count_images(p)) for p in registry.all()]


@router.get("/{project}", response_model=ProjectDetailPublic, responses=_NOT_FOUND, summary="One project with stats")
def get_project(project: ProjectDep) -> ProjectDetailPublic:
    stats = StatsPublic(**project.stats())
    return ProjectDetailPublic(name=project.name, task=project.task.value, images=stats.images, stats=stats)


@router.get("/{project}/stats", response_model=StatsPublic, responses=_NOT_FOUND, summary="Image and instance counts")
def get_stats(project: ProjectDep) -> StatsPublic:
    return StatsPublic(**project.stats())


@router.get(
    "/{project}/classes", response_model=list[ClassPublic], responses=_NOT_FOUND,
    summary="The ontology: every class with its flags, retired (inactive) ones included",
)
def list_classes(project: ProjectDep) -> list[ClassPublic]:
    return [ClassPublic(**row) for row in project.ontology().to_json()]
