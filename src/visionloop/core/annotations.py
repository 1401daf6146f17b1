"""Annotation types, one per kind of label, validated on construction.

Class ids are the project's stable integer ids (or, inside a format's dataset, indexes into its own class list).
Coordinates are pixels in the image after EXIF orientation; boxes are ``xyxy`` (x1, y1, x2, y2) with x2 >= x1.
Every type converts to and from a JSON-able *payload* (``annotation_to_payload`` / ``annotation_from_payload``),
which is what the store keeps in each revision.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from visionloop.core.errors import AnnotationValidationError

__all__ = [
    "RLE",
    "Annotation",
    "Boxes",
    "Instances",
    "Label",
    "Polygons",
    "SemanticMask",
    "Tags",
    "annotation_class_counts",
    "boxes_of",
    "annotation_from_payload",
    "annotation_to_payload",
]


def _check_class_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 0:
        raise AnnotationValidationError(what, expected="a class id (int >= 0)", actual=repr(value))
    return int(value)


@dataclass(frozen=True)
class Label:
    """Classification: exactly one class for the whole image."""

    class_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_id", _check_class_id(self.class_id, "Label.class_id"))


@dataclass(frozen=True)
class Tags:
    """Tagging: the set of classes present in the image (empty = none of them)."""

    class_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        ids = frozenset(_check_class_id(c, "Tags.class_ids[]") for c in self.class_ids)
        object.__setattr__(self, "class_ids", ids)


@dataclass(eq=False)
class Boxes:
    """Detection: N boxes as aligned arrays.

    Shapes: ``xyxy`` (N, 4) float64 pixels; ``class_id`` (N,) int64; ``score`` (N,) float64 in [0, 1] or None for
    ground truth; ``track_id`` (N,) int64 or None (video tracks); ``attributes`` one dict per box.
    """

    xyxy: np.ndarray
    class_id: np.ndarray
    score: np.ndarray | None = None
    track_id: np.ndarray | None = None
    attributes: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float64)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise AnnotationValidationError("Boxes.xyxy shape", expected="(N, 4)", actual=xyxy.shape)
        n = len(xyxy)
        if not np.isfinite(xyxy).all():
            raise AnnotationValidationError("Boxes.xyxy", expected="finite numbers", actual="NaN or inf")
        if n and ((xyxy[:, 2] < xyxy[:, 0]).any() or (xyxy[:, 3] < xyxy[:, 1]).any()):
            bad = int(np.flatnonzero((xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1]))[0])
            raise AnnotationValidationError(
                f"Boxes.xyxy[{bad}]", expected="x2 >= x1 and y2 >= y1 (xyxy order)", actual=xyxy[bad].tolist(),
                hint="if your boxes are x, y, width, height convert them with x2 = x + w, y2 = y + h",
            )
        self.xyxy = xyxy
        self.class_id = self._aligned("class_id", self.class_id, np.int64, n)
        if (self.class_id < 0).any():
            raise AnnotationValidationError("Boxes.class_id", expected="ids >= 0", actual=self.class_id.min())
        if self.score is not None:
            self.score = self._aligned("score", self.score, np.float64, n)
            if n and ((self.score < 0) | (self.score > 1)).any():
                raise AnnotationValidationError(
                    "Boxes.score", expected="values in [0, 1]", actual=(self.score.min(), self.score.max())
                )
        if self.track_id is not None:
            self.track_id = self._aligned("track_id", self.track_id, np.int64, n)
        if self.attributes is not None and len(self.attributes) != n:
            raise AnnotationValidationError("Boxes.attributes length", expected=n, actual=len(self.attributes))

    @staticmethod
    def _aligned(name: str, values: Any, dtype: Any, n: int) -> np.ndarray:
        arr = np.asarray(values, dtype=dtype).reshape(-1)
        if arr.shape != (n,):
            raise AnnotationValidationError(f"Boxes.{name} shape", expected=(n,), actual=arr.shape)
        return arr

    @classmethod
    def empty(cls) -> Boxes:
        return cls(np.zeros((0, 4)), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Boxes):
            return NotImplemented
        return annotation_to_payload(self) == annotation_to_payload(other)

    def clip(self, width: int, height: int) -> tuple[Boxes, list[int]]:
        """Clip boxes to the image; returns the clipped boxes and the indexes of boxes that were changed."""
        clipped = self.xyxy.copy()
        clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
        clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
        changed = np.flatnonzero((clipped != self.xyxy).any(axis=1)).tolist()
        return Boxes(clipped, self.class_id, self.score, self.track_id, self.attributes), changed

    @property
    def area(self) -> np.ndarray:
        """(N,) box areas in square pixels."""
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])


Polygons: TypeAlias = list[list[float]]
"""One instance's outline: a list of rings, each a flat list [x1, y1, x2, y2, ...] of pixels (>= 3 points)."""


@dataclass(frozen=True)
class RLE:
    """COCO run-length encoding of one binary mask; ``counts`` is the compressed string form, ``size`` is (h, w)."""

    size: tuple[int, int]
    counts: str

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) <= 0:
            raise AnnotationValidationError("RLE.size", expected="(height, width) > 0", actual=self.size)
        if not isinstance(self.counts, str):
            raise AnnotationValidationError("RLE.counts", expected="compressed str", actual=type(self.counts))

    @classmethod
    def encode(cls, mask: np.ndarray) -> RLE:
        """Encode a (H, W) boolean/0-1 mask."""
        from pycocotools import mask as mask_utils

        rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
        return cls(size=(int(rle["size"][0]), int(rle["size"][1])), counts=rle["counts"].decode("ascii"))

    def decode(self) -> np.ndarray:
        """(H, W) bool mask."""
        from pycocotools import mask as mask_utils

        return mask_utils.decode(self.to_coco()).astype(bool)

    def to_coco(self) -> dict[str, Any]:
        return {"size": list(self.size), "counts": self.counts.encode("ascii")}

    def area(self) -> int:
        from pycocotools import mask as mask_utils

        return int(mask_utils.area(self.to_coco()))


@dataclass(eq=False)
class Instances:
    """Instance segmentation: boxes plus one outline per instance (polygons or RLE).

    ``boxes`` holds the class ids (and scores for predictions); ``segmentations[i]`` outlines ``boxes[i]``.
    """

    boxes: Boxes
    segmentations: list[Polygons | RLE] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.segmentations) != len(self.boxes):
            raise AnnotationValidationError(
                "Instances.segmentations length", expected=len(self.boxes), actual=len(self.segmentations)
            )
        for i, seg in enumerate(self.segmentations):
            if isinstance(seg, RLE):
                continue
            if not isinstance(seg, list) or not seg:
                raise AnnotationValidationError(
                    f"Instances.segmentations[{i}]", expected="RLE or a non-empty list of rings", actual=type(seg)
                )
            for ring in seg:
                if len(ring) < 6 or len(ring) % 2:
                    raise AnnotationValidationError(
                        f"Instances.segmentations[{i}] ring",
                        expected="a flat [x1, y1, x2, y2, ...] list of >= 3 points",
                        actual=f"{len(ring)} numbers",
                    )

    def __len__(self) -> int:
        return len(self.boxes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instances):
            return NotImplemented
        return annotation_to_payload(self) == annotation_to_payload(other)

    def mask(self, i: int, height: int, width: int) -> np.ndarray:
        """(H, W) bool mask of instance ``i``."""
        seg = self.segmentations[i]
        if isinstance(seg, RLE):
            return seg.decode()
        from pycocotools import mask as mask_utils

        rles = mask_utils.frPyObjects([list(map(float, r)) for r in seg], height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


@dataclass(eq=False)
class SemanticMask:
    """Semantic segmentation: a (H, W) map of class ids; ``ignore_index`` pixels (default 255) are unlabelled.

    Class id 0 is whatever the ontology calls it (usually background).
    """

    mask: np.ndarray
    ignore_index: int = 255

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.ndim != 2:
            raise AnnotationValidationError("SemanticMask.mask", expected="(H, W) array", actual=m.shape)
        if not np.issubdtype(m.dtype, np.integer) and m.dtype != bool:
            raise AnnotationValidationError("SemanticMask.mask dtype", expected="integers", actual=m.dtype)
        self.mask = m.astype(np.int32)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemanticMask):
            return NotImplemented
        return self.ignore_index == other.ignore_index and np.array_equal(self.mask, other.mask)

    def class_ids(self) -> list[int]:
        return [int(c) for c in np.unique(self.mask) if c != self.ignore_index]


Annotation: TypeAlias = Label | Tags | Boxes | Instances | SemanticMask


def _round(values: np.ndarray) -> list[Any]:
    """Coordinates to 1/10000 pixel, as plain floats (JSON payloads compare equal after a round trip)."""
    return np.round(np.asarray(values, dtype=np.float64), 4).tolist()


def _boxes_payload(b: Boxes) -> dict[str, Any]:
    out: dict[str, Any] = {"xyxy": _round(b.xyxy), "class_id": b.class_id.tolist()}
    if b.score is not None:
        out["score"] = _round(b.score)
    if b.track_id is not None:
        out["track_id"] = b.track_id.tolist()
    if b.attributes is not None and any(b.attributes):
        out["attributes"] = b.attributes
    return out


def annotation_to_payload(ann: Annotation) -> dict[str, Any]:
    """JSON-able dict with a ``type`` key; inverse of :func:`annotation_from_payload`."""
    if isinstance(ann, Label):
        return {"type": "label", "class_id": ann.class_id}
    if isinstance(ann, Tags):
        return {"type": "tags", "class_ids": sorted(ann.class_ids)}
    if isinstance(ann, Boxes):
        return {"type": "boxes", **_boxes_payload(ann)}
    if isinstance(ann, Instances):
        segs = [
            {"rle": {"size": list(s.size), "counts": s.counts}}
            if isinstance(s, RLE)
            else {"polygons": [_round(np.asarray(r)) for r in s]}
            for s in ann.segmentations
        ]
        return {"type": "instances", **_boxes_payload(ann.boxes), "segmentations": segs}
    if isinstance(ann, SemanticMask):
        h, w = ann.mask.shape
        per_class = {str(c): RLE.encode(ann.mask == c).counts for c in np.unique(ann.mask).tolist()}
        return {"type": "semantic", "size": [h, w], "ignore_index": ann.ignore_index, "classes": per_class}
    raise AnnotationValidationError("annotation", expected="Label, Tags, Boxes, Instances or SemanticMask",
                                    actual=type(ann).__name__)


def _boxes_from(p: dict[str, Any]) -> Boxes:
    return Boxes(
        np.asarray(p.get("xyxy", []), dtype=np.float64).reshape(-1, 4),
        np.asarray(p.get("class_id", []), dtype=np.int64),
        None if p.get("score") is None else np.asarray(p["score"]),
        None if p.get("track_id") is None else np.asarray(p["track_id"]),
        p.get("attributes"),
    )


def annotation_from_payload(payload: dict[str, Any]) -> Annotation:
    """Build the typed annotation from a stored payload."""
    kind = payload.get("type")
    if kind == "label":
        return Label(payload["class_id"])
    if kind == "tags":
        return Tags(frozenset(payload["class_ids"]))
    if kind == "boxes":
        return _boxes_from(payload)
    if kind == "instances":
        segs: list[Polygons | RLE] = [
            RLE(tuple(s["rle"]["size"]), s["rle"]["counts"]) if "rle" in s else s["polygons"]
            for s in payload["segmentations"]
        ]
        return Instances(_boxes_from(payload), segs)
    if kind == "semantic":
        h, w = payload["size"]
        mask = np.full((h, w), payload.get("ignore_index", 255), dtype=np.int32)
        for cid, counts in payload["classes"].items():
            mask[RLE((h, w), counts).decode()] = int(cid)
        return SemanticMask(mask, payload.get("ignore_index", 255))
    raise AnnotationValidationError(
        "payload type", expected="label, tags, boxes, instances or semantic", actual=repr(kind)
    )


def boxes_of(ann: Boxes | Instances | None) -> Boxes:
    """The boxes of a detection or instance annotation (an instance's box carries its class and score)."""
    if ann is None:
        return Boxes.empty()
    return ann.boxes if isinstance(ann, Instances) else ann


def annotation_class_counts(ann: Annotation) -> Counter[int]:
    """Instances per class id: 1 per Label/Tag, 1 per box or instance, 1 per class present in a semantic mask."""
    if isinstance(ann, Label):
        return Counter([ann.class_id])
    if isinstance(ann, Tags):
        return Counter(ann.class_ids)
    if isinstance(ann, Boxes):
        return Counter(ann.class_id.tolist())
    if isinstance(ann, Instances):
        return Counter(ann.boxes.class_id.tolist())
    return Counter(ann.class_ids())
