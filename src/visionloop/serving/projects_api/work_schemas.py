"""Request and response bodies of the work (assignment, queue, review, gold) and annotator statistics routes
(``...Public`` are responses)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.schemas import UtcDatetime
from visionloop.storage.image_admin import MAX_BULK
from visionloop.storage.review import MAX_REASON, REJECT_TAGS
from visionloop.storage.work import MAX_ANNOTATORS, MAX_BATCH_IMAGES

__all__ = [
    "AcceptedMergePublic",
    "AnnotatorPublic",
    "AnnotatorsPublic",
    "ApproveRequest",
    "BatchCreate",
    "BatchPublic",
    "BatchesPublic",
    "ChangedPublic",
    "ConsensusAnswersPublic",
    "GoldPublic",
    "HoneypotAnswersPublic",
    "HoneypotRate",
    "ImageSelection",
    "MyQueuePublic",
    "MyRejectedPublic",
    "RejectRequest",
    "ReviewItemPublic",
    "ReviewQueuePublic",
    "SubmitRequest",
    "SubmittedPublic",
    "WorkItemPublic",
    "WorkNextPublic",
]

Tag = Literal[  # the names of storage.review.REJECT_TAGS (a test keeps them in step)
    "missing_object", "wrong_class", "loose_box", "extra_object", "wrong_mask", "other"]


class ImageSelection(BaseModel):
    """The image list's filters (GET .../images), to pick a batch's images."""

    class_: str | None = Field(default=None, alias="class", max_length=256)
    split: str | None = Field(default=None, max_length=16)
    version: str | None = Field(default=None, max_length=128)
    annotated: bool | None = None
    review: str | None = Field(default=None, max_length=32)
    annotator: str | None = Field(default=None, max_length=128)
    q: str | None = Field(default=None, max_length=1024)


class BatchCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    annotators: list[str] = Field(min_length=1, max_length=MAX_ANNOTATORS, description="User names, in the order "
                                  "images are dealt to them (round-robin).")
    image_ids: list[int] | None = Field(default=None, max_length=MAX_BATCH_IMAGES, description=(
        "These images; else the images that ``filter`` selects (all when it is null)."))
    filter: ImageSelection | None = None
    per_annotator: int | None = Field(default=None, ge=1, le=MAX_BATCH_IMAGES, description=(
        "At most N images per annotator (the first by id)."))
    mode: Literal["normal", "consensus"] = "normal"
    k: int = Field(default=2, ge=2, le=MAX_ANNOTATORS, description="consensus: annotators per image.")
    honeypot_rate: float = Field(default=0.0, ge=0, le=1, description="Share of the queue that gold images take.")
    agreement_threshold: float = Field(default=0.8, ge=0, le=1, description=(
        "consensus: below this agreement an image goes to review, else it is approved."))
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seeds the honeypot draws.")


class BatchPublic(BaseModel):
    id: int
    name: str
    mode: str
    k: int
    honeypot_rate: float
    agreement_threshold: float
    seed: int
    params: dict[str, Any] = Field(description="How the images were chosen, how many, for whom.")
    created_by: str
    created_at: UtcDatetime
    counts: dict[str, int] = Field(description="Assignments per state: todo, submitted, approved, rejected.")
    by_annotator: dict[str, dict[str, int]] = Field(description="The same per annotator (their progress).")


class BatchesPublic(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[BatchPublic]


class HoneypotRate(BaseModel):
    rate: float = Field(ge=0, le=1)


class GoldPublic(BaseModel):
    image_id: int
    annotation: dict[str, Any]
    author: str
    created_at: UtcDatetime


class WorkItemPublic(BaseModel):
    item: int = Field(description="Send it back to POST .../work/{item}/submit.")
    image: dict[str, Any] = Field(description="id, name, width, height.")
    batch: str
    state: str = Field(description="todo or rejected (a rejection comes back first).")
    base_revision: int | None = Field(description="The head revision the item was read at.")
    annotation: dict[str, Any] | None = Field(description="What to start from (a payload), or null.")
    review: dict[str, Any] | None = Field(description="A rejection: reason, tags, comment, author, created_at.")


class WorkNextPublic(BaseModel):
    item: WorkItemPublic | None = Field(description="null: nothing to do.")


class MyRejectedPublic(BaseModel):
    item: int
    image_id: int
    name: str
    batch: str
    rejected_at: UtcDatetime
    reason: str | None
    tags: list[str]
    author: str | None = Field(description="The reviewer who rejected it.")


class MyQueuePublic(BaseModel):
    counts: dict[str, int] = Field(description="The signed-in annotator's items per state: todo, submitted, "
                                   "approved, rejected.")
    batches: list[dict[str, Any]] = Field(description="The same per batch: batch, counts.")
    rejected: list[MyRejectedPublic] = Field(description="Rejected items to fix, oldest rejection first (the "
                                             "order GET .../work/next hands them out).")


class SubmitRequest(BaseModel):
    annotation: dict[str, Any] | None = Field(default=None, description=(
        "The answer (a payload as GET .../images/{id} gives it); null: submit what is saved already."))
    base_revision: int | None = Field(default=None, ge=1, description="The item's base_revision.")


class SubmittedPublic(BaseModel):
    item: int
    state: str


class ReviewItemPublic(BaseModel):
    image_id: int
    name: str
    submitted_at: UtcDatetime
    items: list[int]
    annotators: list[str]
    batch: str | None
    consensus: bool
    agreement: float | None = Field(description="consensus: the answers' agreement (0..1).")


class ReviewQueuePublic(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[ReviewItemPublic]


class ApproveRequest(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=MAX_BULK, description="Image ids waiting for review.")


class ChangedPublic(BaseModel):
    changed: int = Field(description="Images whose review state changed.")


class AcceptedMergePublic(BaseModel):
    changed: int = Field(description="Images whose review state changed (1).")
    revision: int = Field(description="The approved head revision: the merge's, or a new one restoring it when the "
                          "head was edited after the merge.")


class ConsensusAnswersPublic(BaseModel):
    answers: list[dict[str, Any]] = Field(description="Each annotator's latest answer: item, batch, annotator, "
                                          "annotation (payload), score ({score: agreement with the others, "
                                          "with_merge}), created_at.")
    merges: list[dict[str, Any]] = Field(description="Each merge: agreement, revision (the head it became), "
                                         "annotators, agreed, created_at.")


class RejectRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="What to fix.")
    tags: list[Tag] = Field(default_factory=list, max_length=len(REJECT_TAGS))
    comment: dict[str, list[float]] | None = Field(default=None, description=(
        'Drawn on the image: {"point": [x, y]} or {"box": [x1, y1, x2, y2]}, pixels.'))


class AnnotatorPublic(BaseModel):
    name: str
    role: str
    images: int
    objects: int
    hours: float = Field(description="Measured working time (gaps between saves up to the cap).")
    images_per_hour: float | None
    objects_per_hour: float | None
    median_seconds_per_image: float | None
    approved: int
    rejected: int
    acceptance_rate: float | None = Field(description="approved / (approved + rejected).")
    honeypots: int | None = Field(description="Honeypot answers (null for an annotator's own line).")
    honeypot_score: float | None = Field(description="Mean honeypot score (0..1); null for an annotator's own "
                                         "line.")
    consensus_answers: int
    agreement: float | None = Field(description="Mean agreement with the other annotators on consensus images.")
    days: list[dict[str, Any]] = Field(description="Per UTC day: day, images, objects, hours, approved, rejected, "
                                       "honeypot_score.")


class HoneypotAnswersPublic(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[dict[str, Any]] = Field(description="item, image_id, annotation (the answer), score (precision, "
                                        "recall, f1, mean_iou, matched, missed, extra, wrong_class, ...), "
                                        "created_at.")


class AnnotatorsPublic(BaseModel):
    gap_cap_s: float
    items: list[AnnotatorPublic]
