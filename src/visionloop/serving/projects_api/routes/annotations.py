"""Routes of an image's annotation: its revision history and saving a new revision (optimistic concurrency)."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.core.annotations import annotation_from_payload
from visionloop.core.errors import AnnotationValidationError
from visionloop.serving.error_handlers import ERROR_RESPONSES, ErrorPublic
from visionloop.serving.projects_api.auth import AnnotatorDep
from visionloop.serving.projects_api.deps import ImageId, ProjectDep
from visionloop.serving.projects_api.image_queries import ImageHead, image_head, image_revisions
from visionloop.serving.projects_api.schemas import AnnotationSave, AnnotationSaved, RevisionPublic

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/images/{image_id}", tags=["annotations"], responses=ERROR_RESPONSES)


@router.get("/revisions", response_model=list[RevisionPublic],
            summary="Every saved revision of the image's annotation, oldest first")
def list_revisions(project: ProjectDep, image_id: ImageId) -> list[RevisionPublic]:
    image_head(project, image_id, with_payload=False)
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
               409: {"model": ErrorPublic, "description": "The head moved: base_revision is stale (both named)."}},
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
    revision = project.save_annotation(image_id, annotation, base_revision=body.base_revision, author=user.name)
    return AnnotationSaved(image_id=image_id, revision=revision)
