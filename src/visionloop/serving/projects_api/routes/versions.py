"""Routes of a project's dataset versions (read only; versions are made with ``visionloop version create``).

``visionloop.storage.versions`` is imported when a route runs, so the server starts, and answers 501 on these
routes, on an install that does not have it.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, is_dataclass
from types import ModuleType
from typing import Any

from fastapi import APIRouter, HTTPException

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.schemas import VersionPublic

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/versions", tags=["versions"], responses=ERROR_RESPONSES)

VERSIONS_MODULE = "visionloop.storage.versions"

_RESPONSES: dict[int | str, dict[str, Any]] = {
    501: {"description": "This install has no dataset versions module."},
}


def _versions_module(*needed: str) -> ModuleType:
    try:
        module = importlib.import_module(VERSIONS_MODULE)
    except ModuleNotFoundError as e:
        if e.name not in {VERSIONS_MODULE, None}:
            raise
        raise HTTPException(
            status_code=501, detail=f"dataset versions are not available in this install ({VERSIONS_MODULE} "
            "is missing); upgrade visionloop to list and show versions",
        ) from e
    missing = [n for n in needed if not hasattr(module, n)]
    if missing:
        raise HTTPException(
            status_code=501, detail=f"{VERSIONS_MODULE} lacks {', '.join(missing)}; upgrade visionloop",
        )
    return module


def _public(info: Any) -> VersionPublic:
    data = asdict(info) if is_dataclass(info) and not isinstance(info, type) else dict(vars(info))
    ontology = getattr(info, "ontology", None)
    if hasattr(ontology, "to_json"):
        data["ontology"] = ontology.to_json()
    data["task"] = str(getattr(info, "task", data.get("task")))
    return VersionPublic.model_validate(data)


@router.get("", response_model=list[VersionPublic], responses=_RESPONSES, summary="Dataset versions of the project")
def list_versions(project: ProjectDep) -> list[VersionPublic]:
    module = _versions_module("list_versions")
    return [_public(v) for v in module.list_versions(project)]


@router.get("/{name}", response_model=VersionPublic, responses=_RESPONSES, summary="One dataset version")
def get_version(project: ProjectDep, name: str) -> VersionPublic:
    module = _versions_module("get_version")
    return _public(module.get_version(project, name))
