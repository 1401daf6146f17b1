"""The size and aspect of every box of every head annotation, kept in step on every save (like ``head_counts``), so
the health page's histograms and the image list's box filters are indexed SQL at 100,000 images and millions of boxes
(unnesting the JSON payloads in SQL took about a minute on 1.35 million boxes; see :mod:`visionloop.storage.health`).

A box's *size* is the square root of its area in pixels (the side of a square of the same area: COCO's small /
medium / large are below 32, up to 96, above); its *aspect* is width / height (infinite for a flat box, 1 for a
point). Rows come from the stored payload (``boxes`` and ``instances``), so they are what the database holds.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.storage.models import Base

__all__ = ["HeadBoxRow", "box_measures", "head_box_rows"]


class HeadBoxRow(Base):
    """One box of a head revision (migration 0009)."""

    __tablename__ = "head_boxes"
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"), primary_key=True)
    """The annotation's id, which is its image's."""
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[float] = mapped_column(Float)
    aspect: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_head_boxes_size", "size"), Index("ix_head_boxes_aspect", "aspect"))


def box_measures(xyxy: list[float]) -> tuple[float, float]:
    """(size, aspect) of one xyxy box."""
    w, h = max(0.0, xyxy[2] - xyxy[0]), max(0.0, xyxy[3] - xyxy[1])
    return math.sqrt(w * h), (w / h if h > 0 else math.inf if w > 0 else 1.0)


def head_box_rows(annotation_id: int, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``head_boxes`` rows of an annotation payload (none unless it holds boxes or instances)."""
    if payload.get("type") not in ("boxes", "instances"):
        return []
    rows = []
    for i, xyxy in enumerate(payload.get("xyxy", [])):
        size, aspect = box_measures(xyxy)
        rows.append({"annotation_id": annotation_id, "idx": i, "size": size, "aspect": aspect})
    return rows
