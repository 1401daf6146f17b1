"""Read queries the image routes need that return stored rows as they are (no annotation decoding).

A page of the image list reads the images table joined to the annotations table's ``head`` column only, so its cost
does not grow with the number of boxes; payloads are read only for one image at a time.

The list is filtered (:class:`ImageFilter`: class, split of a version, annotated or not, review state, annotator of
the head revision, file name) and paged by key (``after`` = the last id seen), so every page costs the same however
deep it is; each filter is an ``images.id IN (...)`` over an indexed column (see migration 0003). Images deleted from
the project while a version holds them (``images.deleted_at``) are never listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, not_, or_, select

from visionloop.core.errors import NotFoundError
from visionloop.storage.health import box_condition, folder_condition
from visionloop.storage.models import (
    AnnotationRow,
    HeadCountRow,
    ImageRow,
    ReviewEventRow,
    RevisionRow,
    VersionItemRow,
    VersionRow,
)
from visionloop.storage.project import Project
from visionloop.storage.review import ReviewState, state_filter
from visionloop.storage.versions import SPLITS

__all__ = [
    "NO_SPLIT",
    "ImageFilter",
    "ImageHead",
    "RawRevision",
    "count_images",
    "head_revision",
    "image_head",
    "image_neighbours",
    "image_page",
    "image_revisions",
    "resolve_filter",
]

NO_SPLIT = "none"
"""``split=none``: images that are in no split of the version (added or first annotated after it was made)."""


@dataclass(frozen=True)
class ImageFilter:
    """Which images a list shows; every field None (the default) leaves that filter out."""

    class_id: int | None = None
    version_id: int | None = None
    split: str | None = None
    annotated: bool | None = None
    review: ReviewState | None = None
    annotator: str | None = None
    name_contains: str | None = None
    boxes: tuple[float | None, float | None, float | None, float | None] | None = None
    """size_min, size_max, aspect_min, aspect_max of a box the image has (see storage.health.box_condition)"""
    folder: str | None = None
    conditions: tuple[ColumnElement[bool], ...] = field(default=(), compare=False, repr=False)


def _version_id(project: Project, name: str | None) -> int:
    with project.engine.connect() as c:
        if name is None:
            vid = c.execute(select(func.max(VersionRow.id))).scalar()
            if vid is None:
                raise NotFoundError("version", "(latest)", choices=["none yet: create one first (POST .../versions "
                                                                    "or visionloop version create)"])
            return int(vid)
        vid = c.execute(select(VersionRow.id).where(VersionRow.name == name)).scalar()
        if vid is None:
            raise NotFoundError("version", name, choices=list(
                c.execute(select(VersionRow.name).order_by(VersionRow.id)).scalars()))
        return int(vid)


def _class_id(project: Project, value: str) -> int:
    onto = project.ontology()
    if value.isdigit():
        return onto.by_id(int(value)).id
    found = onto.get(value) or next((c for c in onto.classes if c.name == value), None)
    return found.id if found is not None else onto.by_name(value).id  # raises with suggestions


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def resolve_filter(
    project: Project, *, class_: str | None = None, split: str | None = None, version: str | None = None,
    annotated: bool | None = None, review: str | None = None, annotator: str | None = None, q: str | None = None,
    box_min: float | None = None, box_max: float | None = None, aspect_min: float | None = None,
    aspect_max: float | None = None, folder: str | None = None, seen_unannotated: Sequence[int] = (),
) -> ImageFilter:
    """The filter of the list's query parameters, with names resolved (NotFoundError lists the known ones).

    ``class_``: a class name or id (images whose head annotation has at least one instance or label of it);
    ``split``: train, val, test, or ``none`` (in no split of the version), of ``version`` (default: the latest);
    ``review``: a review state; ``annotator``: the author of the head revision; ``q``: part of the file name, any case;
    ``box_min``/``box_max``/``aspect_min``/``aspect_max``: a box of the head annotation with a size (sqrt of its area,
    pixels) and an aspect (width / height) in these half-open ranges; ``folder``: the first folder of the name
    (``/``: none). ``seen_unannotated``: images the asker must see as never annotated and never reviewed (gold
    images for an annotator): the filters on annotations and reviews treat them so.
    """
    conds: list[ColumnElement[bool]] = []
    unseen = ImageRow.id.in_(list(seen_unannotated)) if seen_unannotated else None
    class_id = version_id = None
    if class_ is not None:
        class_id = _class_id(project, class_)
        conds.append(ImageRow.id.in_(select(HeadCountRow.annotation_id)
                                     .where(HeadCountRow.class_id == class_id, HeadCountRow.count > 0)))
    if split is not None:
        if split not in (*SPLITS, NO_SPLIT):
            raise NotFoundError("split", split, choices=[*SPLITS, NO_SPLIT])
        version_id = _version_id(project, version)
        if split == NO_SPLIT:
            conds.append(not_(ImageRow.id.in_(select(VersionItemRow.image_id)
                                              .where(VersionItemRow.version_id == version_id))))
        else:
            conds.append(ImageRow.id.in_(select(VersionItemRow.image_id).where(
                VersionItemRow.version_id == version_id, VersionItemRow.split == split)))
    elif version is not None:
        raise NotFoundError("split", "(none given)", choices=[*SPLITS, NO_SPLIT],
                            hint="version only says whose splits the split filter means")
    if annotated is not None:
        has = ImageRow.id.in_(select(AnnotationRow.image_id))
        conds.append(has if annotated else not_(has) if unseen is None else or_(not_(has), unseen))
    state = ReviewState.parse(review) if review is not None else None
    if state is not None:
        conds.append(state_filter(state) if unseen is None or state is not ReviewState.TODO
                     else or_(state_filter(state), unseen))
    if annotator is not None:
        conds.append(ImageRow.id.in_(
            select(AnnotationRow.image_id).join(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
            .where(RevisionRow.author == annotator)))
    if q:
        conds.append(ImageRow.name.ilike(_like(q), escape="\\"))
    boxes = (box_min, box_max, aspect_min, aspect_max)
    if any(b is not None for b in boxes):
        conds.append(box_condition(size_min=box_min, size_max=box_max,
                                   aspect_min=aspect_min, aspect_max=aspect_max))
    if folder:
        conds.append(folder_condition(folder))
    shown_annotated = (class_id is not None or annotated or annotator is not None or any(b is not None for b in boxes)
                       or state not in (None, ReviewState.TODO))
    if unseen is not None and shown_annotated:
        conds.append(not_(unseen))
    return ImageFilter(class_id=class_id, version_id=version_id, split=split, annotated=annotated, review=state,
                       annotator=annotator, name_contains=q or None,
                       boxes=boxes if any(b is not None for b in boxes) else None, folder=folder or None,
                       conditions=tuple(conds))


def _listed(query: Select[Any], where: ImageFilter | None) -> Select[Any]:
    query = query.where(ImageRow.deleted_at.is_(None))
    return query.where(*where.conditions) if where is not None else query


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
    review_state: str = ReviewState.TODO.value


@dataclass(frozen=True)
class RawRevision:
    revision: int
    author: str
    created_at: datetime
    payload: dict[str, Any]


_LIST_COLUMNS = (ImageRow.id, ImageRow.sha256, ImageRow.name, ImageRow.width, ImageRow.height, ImageRow.format)


_REVIEW_STATE = (select(ReviewEventRow.state).where(ReviewEventRow.image_id == ImageRow.id)
                 .order_by(ReviewEventRow.id.desc()).limit(1).scalar_subquery().label("review_state"))


def count_images(project: Project, where: ImageFilter | None = None) -> int:
    """Images of the project (that pass ``where``)."""
    with project.engine.connect() as c:
        return int(c.execute(_listed(select(func.count(ImageRow.id)), where)).scalar_one())


def image_page(
    project: Project, *, limit: int, offset: int = 0, after: int | None = None, where: ImageFilter | None = None,
) -> tuple[list[ImageHead], int | None]:
    """Images ordered by id, each with its head revision number and review state: ``limit`` of them after id
    ``after`` (keyset paging), else from ``offset``; and the ``after`` of the next page (None on the last page)."""
    q = _listed(select(*_LIST_COLUMNS, AnnotationRow.head, _REVIEW_STATE)
                .outerjoin(AnnotationRow, AnnotationRow.image_id == ImageRow.id), where)
    if after is not None:
        q = q.where(ImageRow.id > after)
    q = q.order_by(ImageRow.id).offset(offset).limit(limit + 1)
    with project.engine.connect() as c:
        rows = c.execute(q).all()
    items = [ImageHead(id=r.id, sha256=r.sha256, name=r.name, width=r.width, height=r.height, format=r.format,
                       head_revision=r.head, review_state=r.review_state or ReviewState.TODO.value)
             for r in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit else None)


def image_neighbours(
    project: Project, image_id: int, where: ImageFilter | None = None,
) -> tuple[int | None, int | None]:
    """Ids of the images before and after ``image_id`` in the list that ``where`` filters (None at either end)."""
    with project.engine.connect() as c:
        prev = c.execute(_listed(select(func.max(ImageRow.id)).where(ImageRow.id < image_id), where)).scalar()
        nxt = c.execute(_listed(select(func.min(ImageRow.id)).where(ImageRow.id > image_id), where)).scalar()
    return prev, nxt


def image_head(project: Project, image_id: int, *, with_payload: bool = True) -> ImageHead:
    """One image's record, head revision number and (``with_payload``) the head payload; NotFoundError if absent."""
    cols = [ImageRow, AnnotationRow.head, _REVIEW_STATE]
    if with_payload:
        cols.append(RevisionRow.payload)
    q = _listed(select(*cols).outerjoin(AnnotationRow, AnnotationRow.image_id == ImageRow.id)
                .where(ImageRow.id == image_id), None)
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
        payload=row.payload if with_payload else None, review_state=row.review_state or ReviewState.TODO.value,
    )


def head_revision(project: Project, image_id: int) -> RawRevision | None:
    """The head revision of an image's annotation with its payload; None when never annotated."""
    q = (select(RevisionRow.revision, RevisionRow.author, RevisionRow.created_at, RevisionRow.payload)
         .join(AnnotationRow, AnnotationRow.head_revision_id == RevisionRow.id)
         .where(AnnotationRow.image_id == image_id))
    with project.engine.connect() as c:
        r = c.execute(q).first()
    return RawRevision(r.revision, r.author, r.created_at, r.payload) if r is not None else None


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
