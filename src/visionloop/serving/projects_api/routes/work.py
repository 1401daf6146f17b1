"""Routes of the review workflow (``/projects/{project}/work``), thin over :mod:`visionloop.storage.work`,
:mod:`visionloop.storage.gold` and :mod:`visionloop.quality.review_flow`.

Who may call what: admins create batches, set honeypot rates and mark gold images; annotators ask for their next
item and submit it (only their own items: another's is "not found"); reviewers list batches, gold images and the
review queue, approve and reject. Nothing an annotator can read says which item is a honeypot.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from visionloop.core.annotations import annotation_from_payload
from visionloop.quality.review_flow import submit_item
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep, AnnotatorDep, ReviewerDep
from visionloop.serving.projects_api.deps import MAX_ID, ImageId, PageDep, ProjectDep
from visionloop.serving.projects_api.image_queries import resolve_filter
from visionloop.serving.projects_api.work_schemas import (
    AcceptedMergePublic,
    ApproveRequest,
    BatchCreate,
    BatchesPublic,
    BatchPublic,
    ChangedPublic,
    ConsensusAnswersPublic,
    GoldPublic,
    HoneypotRate,
    MyQueuePublic,
    RejectRequest,
    ReviewQueuePublic,
    SubmitRequest,
    SubmittedPublic,
    WorkItemPublic,
    WorkNextPublic,
)
from visionloop.storage import gold, work

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/work", tags=["work"], responses=ERROR_RESPONSES)

ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="Work item id, as GET .../work/next gives it.")]
BatchName = Annotated[str, Path(max_length=128, description="Batch name.")]


def _batch(b: work.Batch) -> BatchPublic:
    return BatchPublic(**b.to_json())


@router.post("/batches", response_model=BatchPublic, status_code=status.HTTP_201_CREATED,
             summary="Assign images to annotators as a new batch (admins)")
def create_batch(user: AdminDep, project: ProjectDep, body: BatchCreate) -> BatchPublic:
    where: tuple[Any, ...] = ()
    describe: dict[str, Any] = {"by": "ids"} if body.image_ids is not None else {"by": "filter"}
    if body.image_ids is None and body.filter is not None:
        chosen = body.filter.model_dump(by_alias=True, exclude_none=True)
        f = body.filter
        where = resolve_filter(project, class_=f.class_, split=f.split, version=f.version, annotated=f.annotated,
                               review=f.review, annotator=f.annotator, q=f.q).conditions
        describe["filter"] = chosen
    return _batch(work.create_batch(
        project, name=body.name, annotators=body.annotators, created_by=user.name, image_ids=body.image_ids,
        where=where, per_annotator=body.per_annotator, mode=body.mode, k=body.k, honeypot_rate=body.honeypot_rate,
        agreement_threshold=body.agreement_threshold, seed=body.seed, describe=describe))


@router.get("/batches", response_model=BatchesPublic, summary="Batches, newest first, with counts per state")
def list_batches(user: ReviewerDep, project: ProjectDep, page: PageDep) -> BatchesPublic:
    total, items = work.list_batches(project, offset=page.offset, limit=page.limit)
    return BatchesPublic(total=total, offset=page.offset, limit=page.limit, items=[_batch(b) for b in items])


@router.get("/batches/{batch}", response_model=BatchPublic, summary="One batch with its counts per state")
def get_batch(user: ReviewerDep, project: ProjectDep, batch: BatchName) -> BatchPublic:
    return _batch(work.get_batch(project, batch))


@router.put("/batches/{batch}/honeypot-rate", response_model=BatchPublic,
            summary="Set the share of the batch's queue that gold images take (admins)")
def set_honeypot_rate(user: AdminDep, project: ProjectDep, batch: BatchName, body: HoneypotRate) -> BatchPublic:
    return _batch(work.set_honeypot_rate(project, batch, body.rate))


@router.get("/gold", response_model=list[GoldPublic], summary="The gold images and their annotations (reviewers)")
def list_gold(user: ReviewerDep, project: ProjectDep) -> list[GoldPublic]:
    return [GoldPublic(**g.to_json()) for g in gold.gold_annotations(project).values()]


@router.put("/gold/{image_id}", response_model=GoldPublic,
            summary="Make the image's current head annotation its gold, for honeypots (admins)")
def mark_gold(user: AdminDep, project: ProjectDep, image_id: ImageId) -> GoldPublic:
    return GoldPublic(**gold.mark_gold(project, image_id, author=user.name).to_json())


@router.delete("/gold/{image_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="The image is no longer gold (admins)")
def unmark_gold(user: AdminDep, project: ProjectDep, image_id: ImageId) -> None:
    gold.unmark_gold(project, image_id, author=user.name)


@router.get("/next", response_model=WorkNextPublic,
            summary="The signed-in annotator's next item: rejections first, then work in order")
def next_item(user: AnnotatorDep, project: ProjectDep) -> WorkNextPublic:
    item = work.next_item(project, user.name)
    return WorkNextPublic.model_validate({"item": item.to_json() if item is not None else None})


@router.get("/mine", response_model=MyQueuePublic,
            summary="The signed-in annotator's items per state and the rejected ones to fix, with the reasons")
def my_queue(user: AnnotatorDep, project: ProjectDep) -> MyQueuePublic:
    return MyQueuePublic.model_validate(work.annotator_queue(project, user.name))


@router.get("/items/{item}", response_model=WorkItemPublic,
            summary="One of the signed-in annotator's items, as GET .../work/next hands it out (to reopen it)")
def get_item(user: AnnotatorDep, project: ProjectDep, item: ItemId) -> WorkItemPublic:
    return WorkItemPublic.model_validate(work.work_item(project, item, annotator=user.name).to_json())


@router.post("/{item}/submit", response_model=SubmittedPublic,
             summary="Submit one of the signed-in annotator's items (to review, scored or merged)")
def submit(user: AnnotatorDep, project: ProjectDep, item: ItemId, body: SubmitRequest) -> SubmittedPublic:
    annotation = annotation_from_payload(body.annotation) if body.annotation is not None else None
    return SubmittedPublic(**submit_item(project, item, annotator=user.name, annotation=annotation,
                                         base_revision=body.base_revision))


@router.get("/review", response_model=ReviewQueuePublic,
            summary="Images waiting for review, oldest submission first (reviewers)")
def review_queue(user: ReviewerDep, project: ProjectDep, page: PageDep) -> ReviewQueuePublic:
    total, items = work.review_queue(project, offset=page.offset, limit=page.limit)
    return ReviewQueuePublic.model_validate({"total": total, "offset": page.offset, "limit": page.limit,
                                             "items": items})


@router.post("/review/approve", response_model=ChangedPublic,
             summary="Approve images waiting for review (reviewers)")
def approve(user: ReviewerDep, project: ProjectDep, body: ApproveRequest) -> ChangedPublic:
    return ChangedPublic(changed=work.approve_images(project, body.ids, author=user.name))


@router.post("/review/{image_id}/reject", response_model=ChangedPublic,
             summary="Reject an image waiting for review: reason, issue tags, a comment drawn on it (reviewers)")
def reject(user: ReviewerDep, project: ProjectDep, image_id: ImageId, body: RejectRequest) -> ChangedPublic:
    return ChangedPublic(changed=work.reject_image(project, image_id, author=user.name, reason=body.reason,
                                                   tags=body.tags, comment=body.comment))


@router.post("/review/{image_id}/accept-merge", response_model=AcceptedMergePublic,
             summary="Approve a consensus image with its latest merge as its annotation, restored if it was edited "
                     "since (reviewers)")
def accept_merge(user: ReviewerDep, project: ProjectDep, image_id: ImageId) -> AcceptedMergePublic:
    project.image(image_id)
    return AcceptedMergePublic(**work.accept_merge(project, image_id, author=user.name))


@router.get("/review/{image_id}/answers", response_model=ConsensusAnswersPublic,
            summary="A consensus image's independent answers and merges, to settle a disagreement (reviewers)")
def consensus_answers(user: ReviewerDep, project: ProjectDep, image_id: ImageId) -> ConsensusAnswersPublic:
    project.image(image_id)
    return ConsensusAnswersPublic.model_validate(work.image_answers(project, image_id))


@router.get("/{item}/events", response_model=list[dict[str, Any]],
            summary="Every state change of a work item: state, author, created_at (reviewers)")
def item_events(user: ReviewerDep, project: ProjectDep, item: ItemId) -> list[dict[str, Any]]:
    work.get_assignment(project, item)
    return work.item_events(project, item)
