"""Routes of a project's classes: the ontology with every class's colour, key and flags; adding and editing (admins).

Edits use the library's operations: a rename is recorded (``storage.ontology_ops``), colour, key, flags and active
go through ``storage.class_settings``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from visionloop.core.ontology import ClassDef, class_keys
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import MAX_ID, ProjectDep
from visionloop.serving.projects_api.schemas import ClassCreate, ClassPublic, ClassUpdate
from visionloop.storage.class_settings import ClassSpec, add_classes, update_class
from visionloop.storage.project import Project

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/classes", tags=["classes"], responses=ERROR_RESPONSES)
_CONFLICT = {409: {"description": "The name or key is taken by another active class, or the class is in use."}}


def _public(project: Project, cdefs: list[ClassDef]) -> list[ClassPublic]:
    keys = class_keys(project.ontology())
    rows = {r["id"]: r for r in project.ontology().to_json()}
    return [ClassPublic(**rows[c.id], key=keys.get(c.id)) for c in cdefs]


@router.get("", response_model=list[ClassPublic],
            summary="The ontology: every class with its colour, key and flags, retired (inactive) ones included")
def list_classes(project: ProjectDep) -> list[ClassPublic]:
    return _public(project, list(project.ontology().classes))


@router.post("", response_model=ClassPublic, status_code=status.HTTP_201_CREATED, responses=_CONFLICT,
             summary="Add a class (admins)")
def create_class(_: AdminDep, project: ProjectDep, body: ClassCreate) -> ClassPublic:
    [made] = add_classes(project, [ClassSpec(
        name=body.name, colour=body.colour or "", key=body.key, orientation_sensitive=body.orientation_sensitive,
        colour_sensitive=body.colour_sensitive)])
    return _public(project, [made])[0]


@router.patch("/{class_id}", response_model=ClassPublic, responses=_CONFLICT,
              summary="Change a class's name, colour, key, flags or active (admins); a rename is recorded")
def edit_class(
    user: AdminDep, project: ProjectDep, body: ClassUpdate,
    class_id: Annotated[int, Path(ge=1, le=MAX_ID, description="Class id, as GET .../classes gives it.")],
) -> ClassPublic:
    changed = update_class(project, class_id, author=user.name, **body.model_dump(exclude_unset=True))
    return _public(project, [changed])[0]
