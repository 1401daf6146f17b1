"""Routes of a project's dataset versions (read only; versions are made with ``visionloop version create``)."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.schemas import VersionPublic
from visionloop.storage import versions
from visionloop.storage.versions import VersionInfo

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/versions", tags=["versions"], responses=ERROR_RESPONSES)


def _public(info: VersionInfo) -> VersionPublic:
    return VersionPublic(name=info.name, task=info.task.value, hash=info.hash, created_at=info.created_at,
                         ontology=info.ontology.to_json(), params=info.params, summary=info.summary)


@router.get("", response_model=list[VersionPublic], summary="Dataset versions of the project, oldest first")
def list_versions(project: ProjectDep) -> list[VersionPublic]:
    return [_public(v) for v in versions.list_versions(project)]


@router.get("/{name}", response_model=VersionPublic, summary="One dataset version")
def get_version(project: ProjectDep, name: str) -> VersionPublic:
    return _public(versions.get_version(project, name))
