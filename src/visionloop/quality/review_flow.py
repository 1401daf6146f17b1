"""Submitting a work item: what happens to an annotator's answer, by the kind of item.

- normal work: the answer (or what the annotator already saved) becomes the head annotation, a revision by the
  annotator; the item and the image go to review (``submitted``);
- a honeypot (gold image): the answer is scored against the gold right away
  (:func:`~visionloop.quality.agreement.agreement`) and kept with its score; neither the head annotation nor the
  gold changes, and the answer to the annotator reads exactly as for normal work;
- a consensus item: the answer is kept as one of the image's ``k`` independent answers; when the last one is in,
  the answers are merged (:func:`~visionloop.quality.consensus.merge_answers`), the merge becomes the head
  annotation (author ``consensus``), each answer gets its agreement with the merge and with the others, and the
  image is approved when the answers agree (agreement >= the batch's threshold), else sent to review.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from visionloop.core.annotations import Annotation, annotation_from_payload, annotation_to_payload
from visionloop.core.errors import AnnotationValidationError, ConflictError
from visionloop.quality.agreement import agreement
from visionloop.quality.consensus import merge_answers
from visionloop.storage.gold import gold_annotations
from visionloop.storage.project import Project
from visionloop.storage.review import ReviewState, set_review_state
from visionloop.storage.work import (
    CONSENSUS_AUTHOR,
    Assignment,
    ItemKind,
    ItemState,
    check_answer,
    get_assignment,
    get_batch,
    image_assignments,
    record_answer,
    set_item_state,
)
from visionloop.storage.work_rows import AnswerRow, MergeRow

__all__ = ["IOU_THRESHOLD", "submit_item"]

IOU_THRESHOLD = 0.5
"""Boxes and masks match (honeypot score, consensus agreement) at this IoU."""


def submit_item(
    project: Project, item_id: int, *, annotator: str, annotation: Annotation | None = None,
    base_revision: int | None = None,
) -> dict[str, Any]:
    """Submit the annotator's item (see the module docstring); returns ``{"item", "state"}``, the same for every
    kind. Only the item's own annotator may submit it; an item waiting for review or approved is a ConflictError."""
    item = get_assignment(project, item_id, annotator=annotator)
    if item.state not in (ItemState.TODO, ItemState.REJECTED):
        raise ConflictError(f"work item {item_id} is {item.state.value}; only items to do or rejected ones can be "
                            "submitted")
    if item.kind is ItemKind.NORMAL:
        _submit_work(project, item, annotation, base_revision)
    else:
        if annotation is None:
            raise AnnotationValidationError("answer", expected="the annotation of the image", actual=None)
        annotation = check_answer(project, item.image_id, annotation)
        if item.kind is ItemKind.GOLD:
            _submit_gold(project, item, annotation)
        else:
            _submit_consensus(project, item, annotation)
    return {"item": item.id, "state": ItemState.SUBMITTED.value}


def _submit_work(project: Project, item: Assignment, annotation: Annotation | None, base: int | None) -> None:
    if annotation is None and project.head(item.image_id)[0] is None:
        raise AnnotationValidationError("answer", expected="an annotation (the image has none saved yet)",
                                        actual=None)
    with project.transaction() as conn:
        if annotation is not None:
            project.save_annotation(item.image_id, annotation, base_revision=base, author=item.annotator, conn=conn)
        set_item_state(conn, [item.id], ItemState.SUBMITTED, author=item.annotator)
        set_review_state(project, [item.image_id], ReviewState.SUBMITTED, author=item.annotator, conn=conn)


def _size(project: Project, image_id: int) -> tuple[int, int]:
    image = project.image(image_id)
    return image.height, image.width


def _submit_gold(project: Project, item: Assignment, annotation: Annotation) -> None:
    gold = gold_annotations(project, [item.image_id]).get(item.image_id)
    score = None if gold is None else agreement(gold.annotation, annotation, iou_threshold=IOU_THRESHOLD,
                                                size=_size(project, item.image_id)).to_json()
    with project.transaction() as conn:
        record_answer(conn, item, annotation_to_payload(annotation), score)
        set_item_state(conn, [item.id], ItemState.SUBMITTED, author=item.annotator)


def _submit_consensus(project: Project, item: Assignment, annotation: Annotation) -> None:
    with project.transaction() as conn:
        record_answer(conn, item, annotation_to_payload(annotation), None)
        set_item_state(conn, [item.id], ItemState.SUBMITTED, author=item.annotator)
    group = image_assignments(project, item.image_id, batch_id=item.batch_id)
    if any(a.state is not ItemState.SUBMITTED for a in group):
        return  # waiting for the other answers
    _merge(project, item, group)


def _merge(project: Project, item: Assignment, group: list[Assignment]) -> None:
    batch = get_batch(project, item.batch_id)
    with project.engine.connect() as conn:
        latest = {}
        for row in conn.execute(select(AnswerRow.id, AnswerRow.assignment_id, AnswerRow.payload)
                                .where(AnswerRow.assignment_id.in_([a.id for a in group])).order_by(AnswerRow.id)):
            latest[row.assignment_id] = row
    answers = [annotation_from_payload(latest[a.id].payload) for a in group]
    merged = merge_answers(answers, iou_threshold=IOU_THRESHOLD, size=_size(project, item.image_id))
    base, _ = project.head(item.image_id)
    agreed = merged.agreement >= batch.agreement_threshold
    with project.transaction() as conn:
        revision = project.save_annotation(item.image_id, merged.annotation, base_revision=base,
                                           author=CONSENSUS_AUTHOR, conn=conn)
        for i, a in enumerate(group):
            conn.execute(update(AnswerRow).where(AnswerRow.id == latest[a.id].id).values(score={
                "score": merged.with_others(i), "with_merge": merged.per_answer[i]}))
        conn.execute(insert(MergeRow).values(
            batch_id=batch.id, image_id=item.image_id, agreement=merged.agreement, revision=revision,
            detail={**merged.to_json(), "annotators": [a.annotator for a in group], "agreed": agreed}))
        set_review_state(project, [item.image_id], ReviewState.SUBMITTED, author=item.annotator, conn=conn)
        if agreed:
            set_item_state(conn, [a.id for a in group], ItemState.APPROVED, author=CONSENSUS_AUTHOR)
            set_review_state(project, [item.image_id], ReviewState.APPROVED, author=CONSENSUS_AUTHOR, conn=conn)
