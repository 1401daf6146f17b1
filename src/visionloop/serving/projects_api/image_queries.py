"""Read queries the image routes need that return stored rows as they are (no annotation decoding).

A page of the image list reads the images table joined to the annotations table's ``head`` column only, so its cost
does not grow with the number of boxes; payloads are read only for one image at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from visionloop.core.errors import NotFoundError
from visionloop.storage.models import AnnotationRow, ImageRow, RevisionRow
from visionloop.storage.project import Project

__all__ = ["ImageHead", "RawRevision", "count_images", "image_head", "image_page", "image_revisions"]


@dataclass(frozen=True)
class ImageHead:
    """One image row with its head revision number (None when never annotated) and, on demand, the payload."""

    id: int
    sha256: str
    name: str
    width: int
    height: int
    format: str
    head_revision: int | None
    source_uri: str = ""
    ingested_at: datetime | None = None
    video_id: str | None = None
    frame_index: int | None = None
    timestamp: float | None = None
    meta: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class RawRevision:
    revision: int
    author: str
    created_at: datetime
    payload: dict[str, Any]


_LIST_COLUMNS = (ImageRow.id, ImageRow.sha256, ImageRow.name, ImageRow.width, ImageRow.height, ImageRow.format)


def count_images(project: Project) -> int:
    with project.engine.connect() as c:
        return int(c.execute(select(func.count(ImageRow.id))).scalar_one())


def image_page(project: Project, *, offset: int, limit: int) -> list[ImageHead]:
    """Images ordered by id, ``limit`` from ``offset``, each with its head revision number."""
    q = (
        select(*_LIST_COLUMNS, AnnotationRow.head)
        .outerjoin(AnnotationRow, AnnotationRow.image_id == ImageRow.id)
        .order_by(ImageRow.id)
        .offset(offset)
        .limit(limit)
    )
    with project.engine.connect() as c:
        return [
            ImageHead(id=r.id, sha256=r.sha256, name=r.name, width=r.width, height=r.height, format=r.format,
                      head_revision=r.head)
            for r in c.execute(q)
        ]


def image_head(project: Project, image_id: int, *, with_payload: bool = True) -> ImageHead:
    """One image's record, head revision number and (``with_payload``) the head payload; NotFoundError if absent."""
    cols = [ImageRow, AnnotationRow.head]
    if with_payload:
        cols.append(RevisionRow.payload)
    q = select(*cols).outerjoin(AnnotationRow, AnnotationRow.image_id == ImageRow.id).where(ImageRow.id == image_id)
    if with_payload:
        q = q.outerjoin(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
    with project.engine.connect() as c:
        row = c.execute(q).first()
    if row is None:
        raise NotFoundError("image", image_id)
    im = row  # a Core connection returns the image columns flat, beside head and payload
    return ImageHead(
        id=im.id, sha256=im.sha256, name=im.name, width=im.width, height=im.height, format=im.format,
        head_revision=row.head, source_uri=im.source_uri, ingested_at=im.ingested_at, video_id=im.video_id,
        frame_index=im.frame_index, timestamp=im.timestamp, meta=im.meta or {},
        payload=row.payload if with_payload else None,
    )


def image_revisions(project: Project, image_id: int) -> list[RawRevision]:
    """Every saved revision of an image's annotation, oldest first (empty when never annotated)."""
    q = (
        select(RevisionRow.revision, RevisionRow.author, RevisionRow.created_at, RevisionRow.payload)
        .join(AnnotationRow, AnnotationRow.id == RevisionRow.annotation_id)
        .where(AnnotationRow.image_id == image_id)
        .order_by(RevisionRow.revision)
    )
    with project.engine.connect() as c:
        return [RawRevision(r.revision, r.author, r.created_at, r.payload) for r in c.execute(q)]
