"""What a prediction is: plain dataclasses in original image pixels, scores in 0..1, JSON-ready.

No torch and no pycocotools here; masks are COCO *uncompressed* RLE (``{"size": [h, w], "counts": [...]}``, column
major, starting with a run of zeros), which pycocotools and the core :class:`~visionloop.core.RLE` both read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from visionloop.core.task import Task

__all__ = ["ClassScore", "Detection", "Prediction", "rle_decode", "rle_encode"]


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool mask -> uncompressed COCO RLE (column-major run lengths, first run counts zeros)."""
    m = np.asarray(mask, dtype=bool)
    flat = m.T.reshape(-1)
    if flat.size == 0:
        return {"size": list(m.shape), "counts": []}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": [int(r) for r in runs]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Uncompressed COCO RLE -> (H, W) bool mask."""
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts sum to {flat.size}, expected {h * w} for size {rle['size']}")
    return flat.reshape(w, h).T


@dataclass(frozen=True)
class ClassScore:
    class_id: int
    name: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "name": self.name, "score": round(self.score, 6)}


@dataclass(frozen=True)
class Detection:
    """One box (xyxy, original image pixels), its class and score; ``mask`` for instance segmentation."""

    xyxy: tuple[float, float, float, float]
    class_id: int
    name: str
    score: float
    mask: dict[str, Any] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"xyxy": [round(v, 2) for v in self.xyxy], "class_id": self.class_id, "name": self.name,
                             "score": round(self.score, 6)}
        if self.mask is not None:
            d["mask"] = self.mask
        return d


@dataclass
class Prediction:
    """The model's answer for one image of ``width`` x ``height`` pixels (after EXIF orientation).

    - classification: ``label`` (top class) and ``scores`` (top-k, best first)
    - tagging: ``tags`` (classes above their threshold) and ``scores`` (every class)
    - detection / instance segmentation: ``detections`` (best first)
    - semantic segmentation: ``class_map`` (H, W) class ids and per-class ``segments`` as RLE
    """

    task: Task
    width: int
    height: int
    label: ClassScore | None = None
    scores: list[ClassScore] = field(default_factory=list)
    tags: list[ClassScore] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    class_map: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task": str(self.task), "width": self.width, "height": self.height}
        if self.task == Task.CLASSIFICATION:
            d["label"] = self.label.to_json() if self.label else None
            d["scores"] = [s.to_json() for s in self.scores]
        elif self.task == Task.TAGGING:
            d["tags"] = [s.to_json() for s in self.tags]
            d["scores"] = [s.to_json() for s in self.scores]
        if self.detections or self.task == Task.DETECTION or (self.task == Task.SEGMENTATION and self.class_map is None):
            d["detections"] = [b.to_json() for b in self.detections]
        if self.class_map is not None:
            d["segments"] = [
                {"class_id": s.class_id, "name": s.name, "score": round(s.score, 6),
                 "mask": rle_encode(self.class_map == s.class_id)}
                for s in self.scores
            ]
        return d

    def to_annotation(self) -> Any:
        """The prediction as a core annotation (Label, Tags, Boxes with scores, Instances or SemanticMask)."""
        from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags

        if self.task == Task.CLASSIFICATION:
            return Label(class_id=self.label.class_id) if self.label else None
        if self.task == Task.TAGGING:
            return Tags(class_ids=frozenset(t.class_id for t in self.tags))
        if self.class_map is not None:
            return SemanticMask(mask=self.class_map.astype(np.int32))
        boxes = Boxes(
            xyxy=np.asarray([d.xyxy for d in self.detections], dtype=np.float64).reshape(-1, 4),
            class_id=np.asarray([d.class_id for d in self.detections], dtype=np.int64),
            score=np.asarray([d.score for d in self.detections], dtype=np.float64),
        )
        if self.task == Task.DETECTION:
            return boxes
        return Instances(boxes=boxes, segmentations=[RLE.encode(rle_decode(d.mask or {"size": [self.height, self.width],
                                                                                       "counts": [self.height * self.width]}))
                                                     for d in self.detections])
