"""Findings set aside: a duplicate group that is not one, an outlier that is fine. The duplicate and outlier lists
are computed afresh each time; the pages leave out what is listed here (``GET /outliers`` does it itself)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import ReviewerDep
from visionloop.serving.projects_api.deps import MAX_ID, ProjectDep
from visionloop.serving.projects_api.label_error_schemas import DismissalCreate, DismissalPublic
from visionloop.storage.dismissals import DismissalKind, dismiss, list_dismissals, undo_dismissal

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/dismissals", tags=["similarity"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[DismissalPublic], summary="Findings set aside, newest first")
def get_dismissals(project: ProjectDep, kind: Annotated[DismissalKind | None, Query()] = None) -> list[dict[str, Any]]:
    return [d.to_json() for d in list_dismissals(project, kind)]


@router.post("", response_model=DismissalPublic, status_code=status.HTTP_201_CREATED,
             summary="Set a finding aside: these images are not duplicates, or this outlier is fine")
def create_dismissal(body: DismissalCreate, project: ProjectDep, user: ReviewerDep) -> dict[str, Any]:
    return dismiss(project, body.kind, body.image_ids, author=user.name, note=body.note).to_json()


@router.delete("/{dismissal_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Show the finding again")
def delete_dismissal(project: ProjectDep, user: ReviewerDep,
                     dismissal_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    undo_dismissal(project, dismissal_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
