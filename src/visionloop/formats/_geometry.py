"""Shape helpers shared by the CVAT, Label Studio, LabelMe, VIA and mask formats.

Formats read their shapes into :class:`Shape` records (pixels, xyxy boxes, flat polygon rings, or RLE masks), clip
them to the image with a :class:`~visionloop.formats.base.Problem` per change, and turn the list into ``Boxes`` (when
every shape is a rectangle) or ``Instances``. Exporters go the other way with :func:`annotation_shapes`.

Inside ``Instances``, a shape drawn as a rectangle is kept as a 4-corner polygon whose attributes carry
``{"shape": "rectangle"}``, so an exporter can write it back as a rectangle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import contourpy
import numpy as np

from visionloop.core.annotations import RLE, Boxes, Instances
from visionloop.formats.base import FormatDataset, Problem

__all__ = [
    "RECTANGLE",
    "SHAPE_KEY",
    "Shape",
    "annotation_shapes",
    "clip_shapes",
    "ellipse_ring",
    "mask_bbox",
    "mask_to_rings",
    "parse_float",
    "rect_ring",
    "ring_area",
    "rings_bbox",
    "shapes_to_annotation",
]

SHAPE_KEY = "shape"
RECTANGLE = "rectangle"


@dataclass(kw_only=True)
class Shape:
    """One object in pixels. Exactly one geometry: ``xyxy`` (rectangle), ``rings`` (polygon) or ``rle`` (mask)."""

    class_id: int
    xyxy: tuple[float, float, float, float] | None = None
    rings: list[list[float]] | None = None
    rle: RLE | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    track_id: int | None = None

    @property
    def is_rectangle(self) -> bool:
        return self.xyxy is not None and self.rings is None and self.rle is None

    def bbox(self) -> tuple[float, float, float, float]:
        if self.rings is not None:
            return rings_bbox(self.rings)
        if self.rle is not None:
            from pycocotools import mask as mask_utils

            x, y, w, h = (float(v) for v in mask_utils.toBbox(self.rle.to_coco()))
            return (x, y, x + w, y + h)
        if self.xyxy is None:
            raise ValueError("shape has no geometry")
        return self.xyxy


def parse_float(value: Any) -> float:
    """A finite float or ValueError (formats report the error per file)."""
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"not a finite number: {value!r}")
    return out


def rect_ring(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """The 4 corners of a box as a flat ring, clockwise from the top left."""
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def rings_bbox(rings: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    xs = [float(v) for r in rings for v in r[0::2]]
    ys = [float(v) for r in rings for v in r[1::2]]
    return (min(xs), min(ys), max(xs), max(ys))


def ring_as_rect(ring: Sequence[float]) -> tuple[float, float, float, float] | None:
    """The box a 4-corner axis-aligned ring outlines, or None."""
    if len(ring) != 8:
        return None
    xs, ys = sorted(set(ring[0::2])), sorted(set(ring[1::2]))
    if len(xs) > 2 or len(ys) > 2:
        return None
    return (xs[0], ys[0], xs[-1], ys[-1])


def ellipse_ring(cx: float, cy: float, rx: float, ry: float, theta: float = 0.0, *, n: int = 32) -> list[float]:
    """An ellipse (or circle, rx == ry) as an n-point flat ring; ``theta`` in radians."""
    ring: list[float] = []
    ct, st = math.cos(theta), math.sin(theta)
    for k in range(n):
        a = 2 * math.pi * k / n
        x, y = rx * math.cos(a), ry * math.sin(a)
        ring += [round(cx + x * ct - y * st, 3), round(cy + x * st + y * ct, 3)]
    return ring


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """xyxy pixel box around the True pixels (x2, y2 exclusive), None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def mask_to_rings(mask: np.ndarray) -> list[list[float]]:
    """Outline rings of a (H, W) bool mask, for formats that hold only polygons (pixel-edge coordinates).

    Traced with contourpy (marching squares at 0.5 on the zero-padded mask; a runtime dependency through
    matplotlib), then points on a straight edge dropped, which loses nothing. Each connected part and each hole is
    a ring; an empty mask has none. Pixel ``(x, y)`` spans ``[x, x+1] x [y, y+1]``: the outline runs through the
    middle of each border pixel's outer edge, cutting corners by half a pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    padded = np.pad(mask.astype(np.float64), 1)
    lines = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate).lines(0.5)
    rings = []
    for line in lines:
        pts = np.asarray(line, dtype=np.float64) - 0.5  # padded index (pixel centres + 1) -> pixel edges
        if len(pts) >= 2 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        pts = _without_collinear(pts)
        if len(pts) >= 3:
            rings.append([round(float(v), 3) for v in pts.reshape(-1)])
    return rings


def _without_collinear(pts: np.ndarray) -> np.ndarray:
    """The closed ring ``pts`` (N, 2) without points that lie on the line through their neighbours."""
    if len(pts) < 4:
        return pts
    before = pts - np.roll(pts, 1, axis=0)
    after = np.roll(pts, -1, axis=0) - pts
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    return pts[np.abs(cross) > 1e-9]


def ring_area(ring: Sequence[float]) -> float:
    """Area (square pixels) of a flat ring ``[x1, y1, x2, y2, ...]`` (shoelace formula)."""
    pts = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    x, y = pts[:, 0], pts[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _report(ds: FormatDataset, where: str, reason: str, action: str) -> None:
    ds.problems.append(Problem(path=where, reason=reason, action=action))


def clip_shapes(
    shapes: list[Shape], width: int | None, height: int | None, ds: FormatDataset, where: str
) -> list[Shape]:
    """Clip rectangles and polygons to the image (one ``clipped`` problem per changed shape); drop empty ones."""
    if not width or not height:
        return shapes
    out = []
    for i, s in enumerate(shapes):
        if s.rle is not None:
            if tuple(s.rle.size) != (height, width):
                _report(ds, where, f"mask {i} is {s.rle.size[1]}x{s.rle.size[0]}, image is {width}x{height}",
                        "skipped")
                continue
            out.append(s)
            continue
        if s.rings is not None:
            clipped = [[min(max(v, 0.0), float(width if k % 2 == 0 else height)) for k, v in enumerate(r)]
                       for r in s.rings]
            if clipped != s.rings:
                _report(ds, where, f"polygon {i} ({ds.classes[s.class_id]}) reaches outside the {width}x{height} "
                        "image", "clipped")
                s.rings = clipped
            x1, y1, x2, y2 = rings_bbox(s.rings)
            if x2 <= x1 or y2 <= y1:
                _report(ds, where, f"polygon {i} ({ds.classes[s.class_id]}) has no area inside the image", "skipped")
                continue
            out.append(s)
            continue
        if s.xyxy is None:
            continue
        x1, y1, x2, y2 = s.xyxy
        c = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
        if c != s.xyxy:
            if c[2] <= c[0] or c[3] <= c[1]:
                _report(ds, where, f"box {i} ({ds.classes[s.class_id]}) {list(s.xyxy)} lies outside the "
                        f"{width}x{height} image", "skipped")
                continue
            _report(ds, where, f"box {i} ({ds.classes[s.class_id]}) {list(s.xyxy)} sticks out of the "
                    f"{width}x{height} image; clipped to {[round(v, 2) for v in c]}", "clipped")
            s.xyxy = c
        out.append(s)
    return out


def _attributes(shapes: Sequence[Shape], extra: Iterable[dict[str, Any]] | None = None) -> list[dict[str, Any]] | None:
    attrs = list(extra) if extra is not None else [dict(s.attributes) for s in shapes]
    return attrs if any(attrs) else None


def _track_ids(shapes: Sequence[Shape]) -> np.ndarray | None:
    if all(s.track_id is None for s in shapes) or not shapes:
        return None
    return np.asarray([-1 if s.track_id is None else s.track_id for s in shapes], dtype=np.int64)


def shapes_to_annotation(shapes: Sequence[Shape], *, segmentation: bool) -> Boxes | Instances:
    """``Boxes`` from rectangles (``segmentation=False``: other shapes become their bounding boxes), or ``Instances``
    (rectangles become 4-corner polygons tagged ``{"shape": "rectangle"}``)."""
    if not shapes:
        return Instances(Boxes.empty(), []) if segmentation else Boxes.empty()
    xyxy = np.asarray([s.bbox() for s in shapes], dtype=np.float64).reshape(-1, 4)
    class_id = np.asarray([s.class_id for s in shapes], dtype=np.int64)
    if not segmentation:
        return Boxes(xyxy, class_id, track_id=_track_ids(shapes), attributes=_attributes(shapes))
    segs: list[list[list[float]] | RLE] = []
    attrs = []
    for s in shapes:
        a = dict(s.attributes)
        if s.rle is not None:
            segs.append(s.rle)
        elif s.rings is not None:
            segs.append([list(map(float, r)) for r in s.rings])
        else:
            assert s.xyxy is not None
            segs.append([rect_ring(*s.xyxy)])
            a[SHAPE_KEY] = RECTANGLE
        attrs.append(a)
    boxes = Boxes(xyxy, class_id, track_id=_track_ids(shapes), attributes=_attributes(shapes, attrs))
    return Instances(boxes, segs)


def annotation_shapes(ann: Boxes | Instances) -> list[Shape]:
    """The shapes of an annotation, for writing: rectangles for boxes and for polygons tagged as rectangles."""
    boxes = ann.boxes if isinstance(ann, Instances) else ann
    out = []
    for i in range(len(boxes)):
        attrs = dict(boxes.attributes[i]) if boxes.attributes else {}
        track = int(boxes.track_id[i]) if boxes.track_id is not None and boxes.track_id[i] >= 0 else None
        cid = int(boxes.class_id[i])
        if isinstance(ann, Boxes):
            out.append(Shape(class_id=cid, xyxy=tuple(map(float, boxes.xyxy[i])), attributes=attrs, track_id=track))
            continue
        seg = ann.segmentations[i]
        if isinstance(seg, RLE):
            out.append(Shape(class_id=cid, rle=seg, attributes=attrs, track_id=track))
            continue
        rect = ring_as_rect(seg[0]) if len(seg) == 1 else None
        if attrs.get(SHAPE_KEY) == RECTANGLE and rect is not None:
            attrs.pop(SHAPE_KEY)
            out.append(Shape(class_id=cid, xyxy=rect, attributes=attrs, track_id=track))
        else:
            out.append(Shape(class_id=cid, rings=[list(map(float, r)) for r in seg], attributes=attrs,
                             track_id=track))
    return out
