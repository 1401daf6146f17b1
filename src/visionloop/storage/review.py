"""Review state of images: an append-only log of state changes, each with who made it and when.

States: ``todo`` (also every image never reviewed), ``in_progress``, ``submitted`` (sent to review), ``approved``,
``rejected`` (with a reason, issue tags from :data:`REJECT_TAGS` and optionally a comment drawn on the image: a point
or a box). A change appends a row to ``review_events`` and never edits one, so the log says who
decided what and when; an image's current state is its latest row (highest id). Which transitions are allowed is not
checked here (any state may follow any other); the review workflow builds on this log.

:func:`state_filter` gives the SQL condition "current state is X" that the image list filters with: the latest row
per image is found through the ``(image_id, id)`` index, so the filter stays fast at 100,000 images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, not_, or_, select
from sqlalchemy.orm import aliased

from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.storage.events import EventKind, emit_event, review_done_payload
from visionloop.storage.models import ImageRow, ReviewEventRow, utcnow
from visionloop.storage.project import Project

__all__ = [
    "MAX_REASON",
    "REJECT_TAGS",
    "ReviewEvent",
    "ReviewState",
    "current_reviews",
    "review_history",
    "check_comment",
    "set_review_state",
    "state_filter",
]

MAX_REASON = 2000
REJECT_TAGS = ("missing_object", "wrong_class", "loose_box", "extra_object", "wrong_mask", "other")
"""The issue tags a rejection may carry."""


class ReviewState(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def parse(cls, value: str | ReviewState) -> ReviewState:
        try:
            return cls(value)
        except ValueError:
            raise NotFoundError("review state", value, choices=[s.value for s in cls]) from None


@dataclass(frozen=True)
class ReviewEvent:
    image_id: int
    state: ReviewState
    reason: str | None
    author: str
    created_at: datetime
    tags: tuple[str, ...] = ()
    comment: dict[str, Any] | None = field(default=None, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "state": self.state.value, "reason": self.reason, "author": self.author,
                "created_at": self.created_at, "tags": list(self.tags), "comment": self.comment}


def _event(row: Any) -> ReviewEvent:
    created = row.created_at.replace(tzinfo=UTC) if row.created_at.tzinfo is None else row.created_at
    return ReviewEvent(image_id=row.image_id, state=ReviewState(row.state), reason=row.reason, author=row.author,
                       created_at=created, tags=tuple(row.tags or ()), comment=row.comment)


def _latest_of(image_id: Any) -> Any:
    later = aliased(ReviewEventRow)
    return select(func.max(later.id)).where(later.image_id == image_id).scalar_subquery()


def _tags(tags: Sequence[str] | None) -> list[str] | None:
    if not tags:
        return None
    unknown = [t for t in tags if t not in REJECT_TAGS]
    if unknown:
        raise NotFoundError("review tag", unknown[0], choices=list(REJECT_TAGS))
    return list(dict.fromkeys(tags))


def check_comment(comment: dict[str, Any] | None, width: int, height: int) -> dict[str, Any] | None:
    """A comment geometry checked against an image of ``width`` x ``height`` pixels: ``{"point": [x, y]}`` or
    ``{"box": [x1, y1, x2, y2]}``; returned with float coordinates."""
    if comment is None:
        return None
    kind = next(iter(comment), None) if isinstance(comment, dict) and len(comment) == 1 else None
    n = {"point": 2, "box": 4}.get(str(kind))
    values = comment.get(kind) if n else None  # type: ignore[union-attr]
    if n is None or not isinstance(values, list | tuple) or len(values) != n or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise AnnotationValidationError("review comment", expected='{"point": [x, y]} or {"box": [x1, y1, x2, y2]}',
                                        actual=str(comment)[:80])
    xs, ys = values[0::2], values[1::2]
    if min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height or (n == 4 and (xs[1] < xs[0]
                                                                                         or ys[1] < ys[0])):
        raise AnnotationValidationError("review comment", expected=f"pixels inside the {width}x{height} image "
                                        "(a box as x1 <= x2, y1 <= y2)", actual=list(values))
    return {kind: [float(v) for v in values]}


def set_review_state(
    project: Project, image_ids: Sequence[int], state: ReviewState | str, *, author: str, reason: str | None = None,
    tags: Sequence[str] | None = None, comment: dict[str, Any] | None = None, conn: Connection | None = None,
) -> int:
    """Record ``state`` for each image (one transaction); images already in that state are left as they are.

    ``rejected`` needs a ``reason`` (what to fix), and may carry ``tags`` (from :data:`REJECT_TAGS`) and a
    ``comment`` geometry (see :func:`check_comment`; checked against each image). Returns how many images changed
    state. NotFoundError names the first id that is not an image of the project. With ``conn``, it is written in
    the caller's transaction. An approval or rejection that changes something records one ``review.done`` event
    (:mod:`visionloop.storage.events`) in the same transaction.
    """
    state = ReviewState.parse(state)
    tag_list = _tags(tags)
    if (tag_list or comment is not None) and state is not ReviewState.REJECTED:
        raise AnnotationValidationError("review tags and comment", expected="only with a rejection",
                                        actual=state.value)
    reason = (reason or "").strip() or None
    if state is ReviewState.REJECTED and reason is None:
        raise AnnotationValidationError("review reason", expected="what to fix, for a rejection", actual="nothing")
    if reason is not None and len(reason) > MAX_REASON:
        raise AnnotationValidationError("review reason", expected=f"at most {MAX_REASON} characters",
                                        actual=len(reason))
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    with project._conn(conn) as conn:
        found = {r.id: r for r in conn.execute(select(ImageRow.id, ImageRow.width, ImageRow.height)
                                                .where(ImageRow.id.in_(ids), ImageRow.deleted_at.is_(None)))}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError("image", missing[0])
        for r in found.values():
            comment = check_comment(comment, r.width, r.height)
        current = dict(conn.execute(
            select(ReviewEventRow.image_id, ReviewEventRow.state)
            .where(ReviewEventRow.image_id.in_(ids), ReviewEventRow.id == _latest_of(ReviewEventRow.image_id))).all())
        changing = [i for i in ids if current.get(i, ReviewState.TODO.value) != state.value
                    or (state is ReviewState.REJECTED)]  # a new rejection reason is a new decision
        if changing:
            now = utcnow()
            conn.execute(insert(ReviewEventRow), [
                {"image_id": i, "state": state.value, "reason": reason, "author": author, "created_at": now,
                 "tags": tag_list, "comment": comment} for i in changing])
            if state in (ReviewState.APPROVED, ReviewState.REJECTED):  # a reviewer decided: one event, same transaction
                emit_event(conn, EventKind.REVIEW_DONE, review_done_payload(
                    project.name, changing, decision=state.value, reviewer=author, reason=reason, tags=tag_list))
        return len(changing)


def current_reviews(project: Project, image_ids: Sequence[int]) -> dict[int, ReviewEvent]:
    """The latest review row of each image that has one."""
    q = select(ReviewEventRow).where(ReviewEventRow.image_id.in_(list(image_ids)),
                                     ReviewEventRow.id == _latest_of(ReviewEventRow.image_id))
    with project.engine.connect() as conn:
        return {r.image_id: _event(r) for r in conn.execute(q)}


def review_history(project: Project, image_id: int) -> list[ReviewEvent]:
    """Every review state change of an image, oldest first."""
    with project.engine.connect() as conn:
        rows = conn.execute(select(ReviewEventRow).where(ReviewEventRow.image_id == image_id)
                            .order_by(ReviewEventRow.id)).all()
    return [_event(r) for r in rows]


def state_filter(state: ReviewState | str) -> ColumnElement[bool]:
    """SQL condition on ``images.id``: the image's current review state is ``state`` (``todo`` includes images
    never reviewed)."""
    state = ReviewState.parse(state)
    in_state = (select(ReviewEventRow.image_id)
                .where(ReviewEventRow.state == state.value, ReviewEventRow.id == _latest_of(ReviewEventRow.image_id)))
    if state is not ReviewState.TODO:
        return ImageRow.id.in_(in_state)
    return or_(ImageRow.id.in_(in_state), not_(ImageRow.id.in_(select(ReviewEventRow.image_id))))
