"""Box checks shared by the box formats (COCO, VOC, YOLO, CSV): clip to the image, report what is odd.

Coordinates are pixels, xyxy (x1, y1, x2, y2), measured on pixel edges: a box covering the whole W x H image is
(0, 0, W, H).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from visionloop.formats.base import Problem

__all__ = ["check_boxes", "fmt_num", "polygon_bbox", "rect_polygon"]


def check_boxes(
    boxes: Sequence[Sequence[float]],
    *,
    size: tuple[int, int] | None,
    where: str,
    problems: list[Problem],
    labels: Sequence[str] | None = None,
    tolerance: float = 1e-6,
) -> tuple[np.ndarray, list[int]]:
    """Validate and clip the boxes of one image; returns ``(xyxy (K, 4) float64, kept indexes into boxes)``.

    ``size`` is (width, height) in pixels, or None when unknown (then nothing is clipped). Per box:

    - not four finite numbers, or x2 < x1 / y2 < y1: skipped and reported;
    - partly outside the image: clipped to it, reported with ``action="clipped"``;
    - entirely outside the image (nothing left after clipping): skipped and reported;
    - zero width or height in the source: kept and reported (``action="kept"``) so counts match the source.

    Boxes sticking out by at most ``tolerance`` pixels (rounding of normalised coordinates) are clipped silently.
    """
    kept: list[int] = []
    rows: list[list[float]] = []
    for i, box in enumerate(boxes):
        what = f"box {i}" + (f" ({labels[i]})" if labels is not None else "")
        try:
            x1, y1, x2, y2 = (float(v) for v in box)
        except (TypeError, ValueError):
            problems.append(Problem(path=where, reason=f"{what} is not four numbers: {list(box)!r}"))
            continue
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            problems.append(Problem(path=where, reason=f"{what} has a NaN or infinite coordinate"))
            continue
        if x2 < x1 or y2 < y1:
            problems.append(Problem(path=where, reason=(
                f"{what} [{fmt_num(x1)}, {fmt_num(y1)}, {fmt_num(x2)}, {fmt_num(y2)}] has x2 < x1 or y2 < y1")))
            continue
        if size is not None and size[0] > 0 and size[1] > 0:
            w, h = size
            c = [min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h)]
            excess = max(abs(a - b) for a, b in zip(c, (x1, y1, x2, y2), strict=True))
            if 0 < excess <= tolerance:
                x1, y1, x2, y2 = c
            elif excess > 0:
                had_area = x2 > x1 and y2 > y1
                if had_area and (c[2] <= c[0] or c[3] <= c[1]):
                    problems.append(Problem(path=where, reason=(
                        f"{what} {[fmt_num(v) for v in (x1, y1, x2, y2)]} lies entirely outside the {w}x{h} image")))
                    continue
                problems.append(Problem(path=where, action="clipped", reason=(
                    f"{what} {[fmt_num(v) for v in (x1, y1, x2, y2)]} sticks out of the {w}x{h} image; "
                    f"clipped to {[fmt_num(v) for v in c]}")))
                x1, y1, x2, y2 = c
        if x2 == x1 or y2 == y1:
            problems.append(Problem(path=where, action="kept", reason=(
                f"{what} {[fmt_num(v) for v in (x1, y1, x2, y2)]} has zero width or height; "
                "kept as in the source, fix or delete it in the annotation tool")))
        kept.append(i)
        rows.append([x1, y1, x2, y2])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4), kept


def rect_polygon(xyxy: Sequence[float]) -> list[list[float]]:
    """The outline of a box as a one-ring polygon (used when a segmentation dataset holds a bare box)."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def polygon_bbox(rings: Sequence[Sequence[float]]) -> list[float]:
    """xyxy extent of a polygon's rings."""
    xs = [float(v) for r in rings for v in r[0::2]]
    ys = [float(v) for r in rings for v in r[1::2]]
    return [min(xs), min(ys), max(xs), max(ys)]


def fmt_num(value: float, digits: int = 6) -> str:
    """A number as short text: ``3`` for 3.0, ``2.5`` for 2.5, at most ``digits`` decimals."""
    v = round(float(value), digits)
    if v == int(v):
        return str(int(v))
    return f"{v:.{digits}f}".rstrip("0").rstrip(".")
