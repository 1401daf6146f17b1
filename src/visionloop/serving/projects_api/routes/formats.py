"""``GET /api/v1/formats``: the annotation formats import and export know, with the tasks each holds."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from visionloop.formats import format_catalog
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import SignedInDep

__all__ = ["FormatPublic", "router"]

router = APIRouter(tags=["formats"], responses=ERROR_RESPONSES)


class FormatPublic(BaseModel):
    name: str = Field(description="The name import (``format``) and export (``format``) take.")
    title: str
    tasks: list[str] = Field(description="The project tasks the format holds.")


@router.get("/formats", response_model=list[FormatPublic], summary="Annotation formats for import and export")
def list_formats(access: SignedInDep) -> list[FormatPublic]:
    return [FormatPublic(**f) for f in format_catalog()]  # type: ignore[arg-type]
