"""Routes of an image's annotation: its revision history and saving a new revision (optimistic concurrency)."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from visionloop.core.annotations import annotation_from_payload
from visionloop.core.errors import AnnotationValidationError, StaleRevisionError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AnnotatorDep, ViewerDep
from visionloop.serving.projects_api.deps import ImageId, ProjectDep
from visionloop.serving.projects_api.image_queries import ImageHead, head_revision, image_head, image_revisions
from visionloop.serving.projects_api.routes.images import hidden_gold
from visionloop.serving.projects_api.schemas import (
    AnnotationSave,
    AnnotationSaved,
    RevisionPublic,
    SaveConflictPublic,
    YoursPublic,
)

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/images/{image_id}", tags=["annotations"], responses=ERROR_RESPONSES)


@router.get("/revisions", response_model=list[RevisionPublic],
            summary="Every saved revision of the image's annotation, oldest first")
def list_revisions(user: ViewerDep, project: ProjectDep, image_id: ImageId) -> list[RevisionPublic]:
    image_head(project, image_id, with_payload=False)
    if hidden_gold(user, project, [image_id]):
        return []  # an annotator sees a gold image as never annotated (routes.images)
    return [RevisionPublic(revision=r.revision, author=r.author, created_at=r.created_at, payload=r.payload)
            for r in image_revisions(project, image_id)]


def _check_payload_size(payload: dict[str, object], item: ImageHead) -> None:
    """Refuse semantic masks whose size is not the image's before allocating them."""
    if payload.get("type") == "semantic" and payload.get("size") != [item.height, item.width]:
        raise AnnotationValidationError(
            "semantic mask size", expected=[item.height, item.width], actual=payload.get("size"),
            hint="a semantic mask covers the whole image: size is [height, width]",
        )


@router.put(
    "/annotation", response_model=AnnotationSaved,
    responses={400: {"description": "The body is not JSON."},
               409: {"model": SaveConflictPublic, "description": "The head moved: base_revision is stale. The "
                     "answer carries both versions: ``head`` (who saved what, when) and ``yours``."}},
    summary="Save a new annotation revision (refused with 409 when base_revision is not the head)",
)
def save_annotation(
    user: AnnotatorDep, project: ProjectDep, image_id: ImageId, body: AnnotationSave,
) -> AnnotationSaved:
    """The revision's author is the signed-in user."""
    item = image_head(project, image_id, with_payload=False)
    _check_payload_size(body.payload, item)
    try:
        annotation = annotation_from_payload(body.payload)
    except AnnotationValidationError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise AnnotationValidationError(
            "annotation payload", expected="a payload as GET .../images/{id} returns it (see core.annotations)",
            actual=f"{type(e).__name__}: {e}",
        ) from e
    try:
        revision = project.save_annotation(image_id, annotation, base_revision=body.base_revision,
                                           author=user.name)
    except StaleRevisionError as e:
        head = head_revision(project, image_id)
        conflict = SaveConflictPublic(
            detail=str(e), base_revision=e.base_revision, head_revision=e.head_revision,
            head=RevisionPublic(revision=head.revision, author=head.author, created_at=head.created_at,
                                payload=head.payload) if head is not None and not hidden_gold(
                                    user, project, [image_id]) else None,
            yours=YoursPublic(base_revision=body.base_revision, payload=body.payload))
        return JSONResponse(jsonable_encoder(conflict), status_code=status.HTTP_409_CONFLICT)
    return AnnotationSaved(image_id=image_id, revision=revision)
