"""Review state of images: an append-only log of state changes, each with who made it and when.

States: ``todo`` (also every image never reviewed), ``in_progress``, ``submitted`` (sent to review), ``approved``,
``rejected`` (with a reason). A change appends a row to ``review_events`` and never edits one, so the log says who
decided what and when; an image's current state is its latest row (highest id). Which transitions are allowed is not
checked here (any state may follow any other); the review workflow builds on this log.

:func:`state_filter` gives the SQL condition "current state is X" that the image list filters with: the latest row
per image is found through the ``(image_id, id)`` index, so the filter stays fast at 100,000 images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, func, insert, not_, or_, select
from sqlalchemy.orm import aliased

from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.storage.models import ImageRow, ReviewEventRow, utcnow
from visionloop.storage.project import Project

__all__ = [
    "MAX_REASON",
    "ReviewEvent",
    "ReviewState",
    "current_reviews",
    "review_history",
    "set_review_state",
    "state_filter",
]

MAX_REASON = 2000


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

    def to_json(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "state": self.state.value, "reason": self.reason, "author": self.author,
                "created_at": self.created_at}


def _event(row: Any) -> ReviewEvent:
    created = row.created_at.replace(tzinfo=UTC) if row.created_at.tzinfo is None else row.created_at
    return ReviewEvent(image_id=row.image_id, state=ReviewState(row.state), reason=row.reason, author=row.author,
                       created_at=created)


def _latest_of(image_id: Any) -> Any:
    later = aliased(ReviewEventRow)
    return select(func.max(later.id)).where(later.image_id == image_id).scalar_subquery()


def set_review_state(
    project: Project, image_ids: Sequence[int], state: ReviewState | str, *, author: str, reason: str | None = None,
) -> int:
    """Record ``state`` for each image (one transaction); images already in that state are left as they are.

    ``rejected`` needs a ``reason`` (what to fix). Returns how many images changed state. NotFoundError names the
    first id that is not an image of the project.
    """
    state = ReviewState.parse(state)
    reason = (reason or "").strip() or None
    if state is ReviewState.REJECTED and reason is None:
        raise AnnotationValidationError("review reason", expected="what to fix, for a rejection", actual="nothing")
    if reason is not None and len(reason) > MAX_REASON:
        raise AnnotationValidationError("review reason", expected=f"at most {MAX_REASON} characters",
                                        actual=len(reason))
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    with project.transaction() as conn:
        found = set(conn.execute(select(ImageRow.id).where(ImageRow.id.in_(ids), ImageRow.deleted_at.is_(None)))
                    .scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError("image", missing[0])
        current = dict(conn.execute(
            select(ReviewEventRow.image_id, ReviewEventRow.state)
            .where(ReviewEventRow.image_id.in_(ids), ReviewEventRow.id == _latest_of(ReviewEventRow.image_id))).all())
        changing = [i for i in ids if current.get(i, ReviewState.TODO.value) != state.value
                    or (state is ReviewState.REJECTED)]  # a new rejection reason is a new decision
        if changing:
            now = utcnow()
            conn.execute(insert(ReviewEventRow), [
                {"image_id": i, "state": state.value, "reason": reason, "author": author, "created_at": now}
                for i in changing])
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
