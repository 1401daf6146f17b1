"""Gold annotations: the trusted answer of an image that honeypots score annotators against.

The gold is kept apart from the head annotation (an annotation's later revisions do not change it): marking an image
gold copies its current head (or a given annotation) into ``gold_annotations``; the latest row of an image is its
gold, a row without payload unmarks it. Rows are never edited, so it stays on record who set which gold and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, null, select
from sqlalchemy.orm import aliased

from visionloop.core.annotations import Annotation, annotation_from_payload, annotation_to_payload
from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.storage.models import ImageRow
from visionloop.storage.project import Project
from visionloop.storage.work_rows import GoldRow

__all__ = ["Gold", "gold_annotations", "gold_image_ids", "mark_gold", "unmark_gold"]


@dataclass(frozen=True)
class Gold:
    image_id: int
    annotation: Annotation
    author: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "annotation": annotation_to_payload(self.annotation),
                "author": self.author, "created_at": self.created_at}


def _current() -> Any:
    later = aliased(GoldRow)
    return GoldRow.id == (select(func.max(later.id)).where(later.image_id == GoldRow.image_id).scalar_subquery())


def mark_gold(project: Project, image_id: int, *, author: str, annotation: Annotation | None = None) -> Gold:
    """Make ``annotation`` (default: the image's current head annotation) the gold of the image."""
    with project.engine.connect() as conn:
        if conn.execute(select(ImageRow.id).where(ImageRow.id == image_id, ImageRow.deleted_at.is_(None))).first() \
                is None:
            raise NotFoundError("image", image_id)
    if annotation is None:
        _, annotation = project.head(image_id)
        if annotation is None:
            raise ConflictError(f"image {image_id} has no annotation to make gold: annotate it (a trusted person) "
                                "first, then mark it")
    payload = annotation_to_payload(annotation)
    with project.transaction() as conn:
        conn.execute(insert(GoldRow).values(image_id=image_id, payload=payload, author=author))
    return gold_annotations(project, [image_id])[image_id]


def unmark_gold(project: Project, image_id: int, *, author: str) -> bool:
    """The image is no longer gold (its past answers keep their scores); False when it was not gold."""
    if image_id not in gold_annotations(project, [image_id]):
        return False
    with project.transaction() as conn:
        conn.execute(insert(GoldRow).values(image_id=image_id, payload=null(), author=author))  # SQL NULL
    return True


def gold_annotations(project: Project, image_ids: Sequence[int] | None = None) -> dict[int, Gold]:
    """image id -> its current gold (all gold images, or those of ``image_ids`` that are gold)."""
    q = (select(GoldRow).join(ImageRow, ImageRow.id == GoldRow.image_id)
         .where(_current(), GoldRow.payload.is_not(None), ImageRow.deleted_at.is_(None)))
    if image_ids is not None:
        q = q.where(GoldRow.image_id.in_(list(image_ids)))
    with project.engine.connect() as conn:
        rows = conn.execute(q).all()
    return {r.image_id: Gold(image_id=r.image_id, annotation=annotation_from_payload(r.payload), author=r.author,
                             created_at=r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC))
            for r in rows}


def gold_image_ids(project: Project, *, not_by: str | None = None) -> list[int]:
    """Ids of the project's gold images, ascending; ``not_by``: leave out those whose gold that user set."""
    q = (select(GoldRow.image_id).join(ImageRow, ImageRow.id == GoldRow.image_id)
         .where(_current(), GoldRow.payload.is_not(None), ImageRow.deleted_at.is_(None)).order_by(GoldRow.image_id))
    if not_by is not None:
        q = q.where(GoldRow.author != not_by)
    with project.engine.connect() as conn:
        return list(conn.execute(q).scalars())
