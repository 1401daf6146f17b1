"""Routes of a project's dataset versions: list, one, and making one (admins) with the library's
:func:`~visionloop.storage.versions.create_version`, as ``visionloop version create`` does."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.schemas import VersionPublic
from visionloop.storage import versions
from visionloop.storage.versions import VersionInfo, create_version, version_warnings

__all__ = ["VersionCreate", "VersionCreated", "router"]

router = APIRouter(prefix="/projects/{project}/versions", tags=["versions"], responses=ERROR_RESPONSES)


class VersionCreate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=128, description="Default: v1, v2, ...")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the random split.")
    approved_only: bool = Field(default=False, description="Only images whose review state is approved.")
    include_unannotated: bool = False
    splits: Literal["random", "source"] = Field(default="random", description=(
        "random: seeded, leak-free, stratified (images' preferred splits are kept); source: the split each image "
        "came with."))
    val: float = Field(default=0.15, ge=0, le=1, description="Validation fraction (random splits).")
    test: float = Field(default=0.15, ge=0, le=1, description="Test fraction (random splits).")


class VersionCreated(VersionPublic):
    warnings: list[str] = Field(description="What to know about the new version (leaks, empty splits, classes "
                                "missing from val or test).")


def _public(info: VersionInfo) -> VersionPublic:
    return VersionPublic(name=info.name, task=info.task.value, hash=info.hash, created_at=info.created_at,
                         ontology=info.ontology.to_json(), params=info.params, summary=info.summary)


@router.get("", response_model=list[VersionPublic], summary="Dataset versions of the project, oldest first")
def list_versions(project: ProjectDep) -> list[VersionPublic]:
    return [_public(v) for v in versions.list_versions(project)]


@router.post("", response_model=VersionCreated, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "The name is taken, or there is nothing to put in a version."}},
             summary="Freeze the current annotations into a new version with a train/val/test split (admins)")
def make_version(user: AdminDep, project: ProjectDep, body: VersionCreate) -> VersionCreated:
    info = create_version(project, name=body.name, seed=body.seed, fractions=(1 - body.val - body.test, body.val,
                                                                              body.test),
                          include_unannotated=body.include_unannotated, splits=body.splits, author=user.name,
                          approved_only=body.approved_only)
    return VersionCreated(**_public(info).model_dump(), warnings=version_warnings(info))


@router.get("/{name}", response_model=VersionPublic, summary="One dataset version")
def get_version(project: ProjectDep, name: str) -> VersionPublic:
    return _public(versions.get_version(project, name))
