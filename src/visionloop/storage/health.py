"""Dataset health in numbers: class balance, box sizes and aspect ratios, images per folder, the unlabelled share,
review states, the latest label-error run and exact duplicates; every figure is one SQL aggregate.

Nothing here loops over annotations in Python: class balance reads the per-class counts kept with each head revision
(``head_counts``), box sizes and aspect ratios the per-box rows kept with it (``head_boxes``: a count over an index
range per bin); folders are the first part of the image names; review states come from the newest review
event of each image.

:func:`box_condition` is the image-list filter "has a box in this bin", so each bar of a histogram can link to the
images behind it. A box's *size* is the square root of its area in pixels (the side of a square of the same area, the
measure COCO's small/medium/large use: 32 and 96 px); its *aspect* is width / height.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.engine import Connection

from visionloop.storage.head_boxes import HeadBoxRow
from visionloop.storage.label_issues import IssueState, LabelIssueRow, LabelIssueRunRow
from visionloop.storage.models import AnnotationRow, ClassRow, HeadCountRow, ImageRow, ReviewEventRow
from visionloop.storage.project import Project
from visionloop.storage.review import ReviewState

__all__ = [
    "ASPECT_EDGES",
    "MAX_FOLDERS",
    "NO_FOLDER",
    "SIZE_EDGES",
    "TOP_LABEL_ISSUES",
    "DatasetHealth",
    "box_condition",
    "dataset_health",
    "folder_condition",
]

SIZE_EDGES: tuple[float, ...] = (0, 8, 16, 32, 64, 96, 128, 256, 512, math.inf)
"""Bin edges of box sizes (sqrt of the area, pixels): COCO's 32 and 96 among them."""
ASPECT_EDGES: tuple[float, ...] = (0, 0.25, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 4, math.inf)
"""Bin edges of box aspect ratios (width / height): square boxes fall in 0.8-1 and 1-1.25."""
NO_FOLDER = "/"
"""The folder filter's value for images whose name has no folder."""
TOP_LABEL_ISSUES = 5
MAX_FOLDERS = 30
"""Folders listed (most images first); the rest are summed in ``other_folders``."""


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)


def box_condition(
    *, size_min: float | None = None, size_max: float | None = None,
    aspect_min: float | None = None, aspect_max: float | None = None,
) -> ColumnElement[bool]:
    """``images.id IN (...)``: images with at least one box whose size is in [size_min, size_max) and whose aspect is
    in [aspect_min, aspect_max) (each bound optional; one box meets all of them)."""
    conds: list[ColumnElement[bool]] = []
    if size_min is not None:
        conds.append(HeadBoxRow.size >= size_min)
    if size_max is not None:
        conds.append(HeadBoxRow.size < size_max)
    if aspect_min is not None:
        conds.append(HeadBoxRow.aspect >= aspect_min)
    if aspect_max is not None:
        conds.append(HeadBoxRow.aspect < aspect_max)
    return ImageRow.id.in_(select(HeadBoxRow.annotation_id).where(and_(true(), *conds)))  # annotation id = image id


def _first_folder(dialect: str) -> ColumnElement[str]:
    cut = func.strpos(ImageRow.name, "/") if dialect == "postgresql" else func.instr(ImageRow.name, "/")
    return case((cut > 0, func.substr(ImageRow.name, 1, cut - 1)), else_="")


def folder_condition(folder: str) -> ColumnElement[bool]:
    """Images whose name starts with the folder ``folder`` (:data:`NO_FOLDER`: names without a folder)."""
    if folder == NO_FOLDER:
        return ImageRow.name.not_like("%/%")
    escaped = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ImageRow.name.like(f"{escaped}/%", escape="\\")


@dataclass(frozen=True)
class DatasetHealth:
    images: int
    annotated_images: int
    classes: list[dict[str, Any]]
    """id, name, colour, objects (instances in head revisions), images (with at least one), most first"""
    boxes: int
    box_sizes: list[dict[str, Any]]
    """min, max (pixels; max None for the last, open bin), count of boxes"""
    box_aspects: list[dict[str, Any]]
    """min, max (width / height), count"""
    folders: list[dict[str, Any]]
    """folder (NO_FOLDER when none), images; most first, at most MAX_FOLDERS"""
    other_folders: dict[str, int]
    """folders and images beyond the listed ones"""
    reviews: dict[str, int]
    """images per current review state (todo includes never reviewed)"""
    label_errors: dict[str, Any] | None
    """the newest finder run: run_id, created_at, method, total, per state, top open candidates; None: never run"""
    exact_duplicates: dict[str, int]
    """groups and images of byte-identical images (same sha256)"""

    @property
    def unlabelled(self) -> int:
        return self.images - self.annotated_images

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "unlabelled": self.unlabelled}


def _bins(edges: Sequence[float], counts: dict[int, int]) -> list[dict[str, Any]]:
    return [{"min": edges[i], "max": None if math.isinf(edges[i + 1]) else edges[i + 1], "count": counts.get(i, 0)}
            for i in range(len(edges) - 1)]


def _classes(conn: Connection, live: ColumnElement[bool]) -> list[dict[str, Any]]:
    counts = {r.class_id: r for r in conn.execute(
        select(HeadCountRow.class_id, func.sum(HeadCountRow.count).label("objects"),
               func.count().label("images"))
        .join(ImageRow, ImageRow.id == HeadCountRow.annotation_id)  # an annotation's id is its image's
        .where(live, HeadCountRow.count > 0).group_by(HeadCountRow.class_id))}
    rows = conn.execute(select(ClassRow.id, ClassRow.name, ClassRow.colour, ClassRow.active).order_by(ClassRow.id))
    out = [{"id": r.id, "name": r.name, "colour": r.colour or None,
            "objects": int(counts[r.id].objects) if r.id in counts else 0,
            "images": int(counts[r.id].images) if r.id in counts else 0}
           for r in rows if r.active or r.id in counts]
    return sorted(out, key=lambda c: (-c["objects"], c["name"]))


def _in_bin(column: Any, lo: float, hi: float) -> list[ColumnElement[bool]]:
    return [column >= lo] if math.isinf(hi) else [column >= lo, column < hi]


def _box_histograms(conn: Connection) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """Boxes per size bin and per aspect bin: a count over an index range per bin (each box is read once per
    histogram, from the index alone), less the boxes of images deleted from the project (binned here: few)."""
    deleted = select(ImageRow.id).where(ImageRow.deleted_at.is_not(None))
    gone = np.zeros((0, 2))
    if conn.execute(select(deleted.exists())).scalar():
        gone = np.array(conn.execute(select(HeadBoxRow.size, HeadBoxRow.aspect)
                                     .where(HeadBoxRow.annotation_id.in_(deleted))).all(), dtype=float).reshape(-1, 2)
    out = []
    for k, (column, edges) in enumerate(((HeadBoxRow.size, SIZE_EDGES), (HeadBoxRow.aspect, ASPECT_EDGES))):
        less = np.bincount(np.minimum(np.searchsorted(edges, gone[:, k], side="right") - 1, len(edges) - 2),
                           minlength=len(edges) - 1)
        counts = {i: conn.execute(select(func.count()).select_from(HeadBoxRow).where(*_in_bin(column, lo, hi)))
                  .scalar_one() - int(less[i]) for i, (lo, hi) in enumerate(itertools.pairwise(edges))}
        out.append(_bins(edges, counts))
    return sum(b["count"] for b in out[0]), out[0], out[1]


def _reviews(conn: Connection, live: ColumnElement[bool], images: int) -> dict[str, int]:
    newest = (select(func.max(ReviewEventRow.id).label("id")).join(ImageRow, ImageRow.id == ReviewEventRow.image_id)
              .where(live).group_by(ReviewEventRow.image_id).subquery())
    counts = {s.value: 0 for s in ReviewState}
    for state, n in conn.execute(select(ReviewEventRow.state, func.count())
                                 .where(ReviewEventRow.id.in_(select(newest.c.id))).group_by(ReviewEventRow.state)):
        counts[state] = int(n)
    counts[ReviewState.TODO.value] += images - sum(counts.values())  # never reviewed
    return counts


def _label_errors(conn: Connection, top: int) -> dict[str, Any] | None:
    run = conn.execute(select(LabelIssueRunRow).order_by(LabelIssueRunRow.id.desc()).limit(1)).first()
    if run is None:
        return None
    states = {s.value: 0 for s in IssueState}
    for state, n in conn.execute(select(LabelIssueRow.state, func.count()).where(LabelIssueRow.run_id == run.id)
                                 .group_by(LabelIssueRow.state)):
        states[state] = int(n)
    names = dict(conn.execute(select(ClassRow.id, ClassRow.name)).all())
    rows = conn.execute(select(LabelIssueRow.id, LabelIssueRow.image_id, LabelIssueRow.kind, LabelIssueRow.rank,
                               LabelIssueRow.score, LabelIssueRow.given_class_id, LabelIssueRow.suggested_class_id,
                               ImageRow.name.label("image_name"))
                        .join(ImageRow, ImageRow.id == LabelIssueRow.image_id)
                        .where(LabelIssueRow.run_id == run.id, LabelIssueRow.state == IssueState.OPEN.value)
                        .order_by(LabelIssueRow.rank).limit(top)).all()
    return {"run_id": run.id, "created_at": _utc(run.created_at), "method": run.method, "total": sum(states.values()),
            "states": states,
            "top": [{"id": r.id, "image_id": r.image_id, "image_name": r.image_name, "kind": r.kind, "rank": r.rank,
                     "score": r.score, "given": names.get(r.given_class_id), "suggested": names.get(r.suggested_class_id)}
                    for r in rows]}


def _exact_duplicates(conn: Connection, live: ColumnElement[bool]) -> dict[str, int]:
    groups = (select(ImageRow.sha256, func.count().label("n")).where(live).group_by(ImageRow.sha256)
              .having(func.count() > 1).subquery())
    n_groups, n_images = conn.execute(select(func.count(), func.coalesce(func.sum(groups.c.n), 0))).one()
    return {"groups": int(n_groups), "images": int(n_images)}


def dataset_health(project: Project, *, top_label_issues: int = TOP_LABEL_ISSUES) -> DatasetHealth:
    """The health figures of ``project`` (images deleted from it are left out)."""
    dialect = project.engine.dialect.name
    live = ImageRow.deleted_at.is_(None)
    with project.engine.connect() as conn:
        images = int(conn.execute(select(func.count(ImageRow.id)).where(live)).scalar_one())
        annotated = int(conn.execute(select(func.count(AnnotationRow.id))
                                     .join(ImageRow, ImageRow.id == AnnotationRow.image_id).where(live)).scalar_one())
        n_boxes, sizes, aspects = _box_histograms(conn)
        folder = _first_folder(dialect).label("folder")
        folders = [{"folder": r.folder or NO_FOLDER, "images": int(r.n)} for r in conn.execute(
            select(folder, func.count().label("n")).where(live).group_by(folder).order_by(func.count().desc(), folder))]
        rest = folders[MAX_FOLDERS:]
        return DatasetHealth(
            images=images, annotated_images=annotated, classes=_classes(conn, live), boxes=n_boxes,
            box_sizes=sizes, box_aspects=aspects, folders=folders[:MAX_FOLDERS],
            other_folders={"folders": len(rest), "images": sum(f["images"] for f in rest)}, reviews=_reviews(conn, live, images),
            label_errors=_label_errors(conn, top_label_issues), exact_duplicates=_exact_duplicates(conn, live))
