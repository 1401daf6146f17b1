"""Route of a project's classes: the ontology with every class's flags."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.schemas import ClassPublic

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/classes", tags=["classes"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[ClassPublic],
            summary="The ontology: every class with its flags, retired (inactive) ones included")
def list_classes(project: ProjectDep) -> list[ClassPublic]:
    return [ClassPublic(**row) for row in project.ontology().to_json()]
