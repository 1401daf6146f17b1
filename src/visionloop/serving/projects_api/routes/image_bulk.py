"""Acting on a selection of images (``POST .../images/bulk``) and an image's review log.

Actions and who may run them: ``review`` (reviewers: record a review state, e.g. ``submitted`` to send images to
review), ``split`` (admins: the split the next versions put them in), ``delete`` (admins: versions keep what they
hold). At most :data:`~visionloop.storage.image_admin.MAX_BULK` ids per request.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import ReviewerDep
from visionloop.serving.projects_api.deps import MAX_ID, ImageId, ProjectDep
from visionloop.serving.projects_api.image_queries import image_head
from visionloop.serving.projects_api.schemas import ReviewPublic
from visionloop.storage.image_admin import MAX_BULK, delete_images, set_preferred_split
from visionloop.storage.review import MAX_REASON, review_history, set_review_state
from visionloop.storage.users import Role

__all__ = ["BulkAction", "BulkResult", "router"]

router = APIRouter(prefix="/projects/{project}/images", tags=["images"], responses=ERROR_RESPONSES)


class BulkAction(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=MAX_BULK, description=f"Image ids (at most {MAX_BULK}).")
    action: Literal["review", "split", "delete"]
    value: str | None = Field(default=None, max_length=32, description=(
        "review: the state to record (todo, in_progress, submitted = send to review, approved, rejected); "
        "split: train, val or test, or null to drop the preference; delete: not used."))
    reason: str | None = Field(default=None, max_length=MAX_REASON, description="review: why (needed to reject).")


class BulkResult(BaseModel):
    action: str
    images: int = Field(description="Images the request named.")
    changed: int = Field(description="Images whose state changed (review, split) or that were deleted.")
    kept_for_versions: int | None = Field(default=None, description="delete: images a dataset version holds; "
                                          "their files and history stay for it, the project no longer lists them.")
    blobs_removed: int | None = Field(default=None, description="delete: image files no image uses any more.")


@router.post("/bulk", response_model=BulkResult,
             summary="Act on many images: review (reviewers), split or delete (admins)")
def bulk(user: ReviewerDep, project: ProjectDep, body: BulkAction) -> BulkResult:
    if any(not 1 <= i <= MAX_ID for i in body.ids):
        raise HTTPException(422, "image ids are positive integers")
    if body.action != "review" and not user.role.allows(Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{body.action} needs the admin role; {user.name} is {user.role.value} in project "
                            f"{user.project!r}")
    n = len(set(body.ids))
    if body.action == "review":
        if body.value is None:
            raise HTTPException(422, "review needs a value: the state to record "
                                "(todo, in_progress, submitted, approved, rejected)")
        changed = set_review_state(project, body.ids, body.value, author=user.name, reason=body.reason)
        return BulkResult(action=body.action, images=n, changed=changed)
    if body.action == "split":
        return BulkResult(action=body.action, images=n, changed=set_preferred_split(project, body.ids, body.value))
    report = delete_images(project, body.ids)
    return BulkResult(action=body.action, images=n, changed=report.deleted,
                      kept_for_versions=report.kept_for_versions, blobs_removed=report.blobs_removed)


@router.get("/{image_id}/reviews", response_model=list[ReviewPublic],
            summary="Every review state change of the image, oldest first")
def list_reviews(project: ProjectDep, image_id: ImageId) -> list[ReviewPublic]:
    image_head(project, image_id, with_payload=False)
    return [ReviewPublic(**e.to_json()) for e in review_history(project, image_id)]
