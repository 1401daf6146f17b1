"""The one prediction schema: what ``predict`` (a training run), ``predict-package``, the model server and pipelines
answer for an image. Plain dataclasses in original image pixels, scores in 0..1, with one JSON form
(:meth:`Prediction.to_json`, read back by :meth:`Prediction.from_json`).

No torch here. Masks are COCO compressed RLE (``{"size": [h, w], "counts": "<ascii>"}``, the form of COCO result
files), made by :class:`visionloop.core.RLE` over ``pycocotools.mask``.

JSON keys, per task (``task``, ``width`` and ``height`` always):

- classification: ``label`` (top class) and ``scores`` (top-k, best first)
- tagging: ``tags`` (classes at or above their threshold) and ``scores`` (every class)
- detection and instance segmentation: ``detections`` (``xyxy``, ``class_id``, ``name``, ``score``, ``mask`` for
  instances), best first
- semantic segmentation: ``segments`` (``class_id``, ``name``, ``score`` = mean confidence, ``mask``) per class present

A row of a prediction listing is ``{"image": ..., "prediction": {...}}``, or ``{"image": ..., "error": "..."}`` for an
image that could not be read (:func:`prediction_row`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.task import Task

__all__ = ["ClassScore", "Detection", "Prediction", "mask_from_json", "mask_to_json", "prediction_row"]


def mask_to_json(mask: np.ndarray | RLE) -> dict[str, Any]:
    """(H, W) bool mask (or a core RLE) -> COCO compressed RLE as JSON."""
    rle = mask if isinstance(mask, RLE) else RLE.encode(mask)
    return {"size": [int(rle.size[0]), int(rle.size[1])], "counts": rle.counts}


def mask_from_json(data: dict[str, Any]) -> RLE:
    """COCO RLE JSON (compressed ``counts`` string) -> core RLE (``.decode()`` gives the (H, W) bool mask)."""
    return RLE(size=(int(data["size"][0]), int(data["size"][1])), counts=data["counts"])


@dataclass(frozen=True)
class ClassScore:
    class_id: int
    name: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "name": self.name, "score": round(self.score, 6)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClassScore:
        return cls(class_id=int(d["class_id"]), name=str(d["name"]), score=float(d["score"]))


@dataclass(frozen=True)
class Detection:
    """One box (xyxy, original image pixels), its class and score; ``mask`` for instance segmentation."""

    xyxy: tuple[float, float, float, float]
    class_id: int
    name: str
    score: float
    mask: RLE | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"xyxy": [round(v, 2) for v in self.xyxy], "class_id": self.class_id, "name": self.name,
                             "score": round(self.score, 6)}
        if self.mask is not None:
            d["mask"] = mask_to_json(self.mask)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Detection:
        x1, y1, x2, y2 = (float(v) for v in d["xyxy"])
        return cls(xyxy=(x1, y1, x2, y2), class_id=int(d["class_id"]), name=str(d["name"]), score=float(d["score"]),
                   mask=mask_from_json(d["mask"]) if d.get("mask") else None)


@dataclass
class Prediction:
    """The model's answer for one image of ``width`` x ``height`` pixels (after EXIF orientation); see the module
    docstring for what each task fills. ``class_map`` (H, W) holds class ids for semantic segmentation. ``probs``
    (C,) holds every class's probability in the package's class order for classification and tagging (``scores``
    keeps the top-k of classification); it is not part of the JSON form."""

    task: Task
    width: int
    height: int
    label: ClassScore | None = None
    scores: list[ClassScore] = field(default_factory=list)
    tags: list[ClassScore] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    class_map: np.ndarray | None = field(default=None, repr=False)
    probs: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def semantic(self) -> bool:
        return self.class_map is not None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task": str(self.task), "width": self.width, "height": self.height}
        if self.task == Task.CLASSIFICATION:
            d["label"] = self.label.to_json() if self.label else None
            d["scores"] = [s.to_json() for s in self.scores]
        elif self.task == Task.TAGGING:
            d["tags"] = [s.to_json() for s in self.tags]
            d["scores"] = [s.to_json() for s in self.scores]
        elif self.class_map is not None:
            d["segments"] = [{**s.to_json(), "mask": mask_to_json(self.class_map == s.class_id)} for s in self.scores]
        else:
            d["detections"] = [b.to_json() for b in self.detections]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Prediction:
        """Read :meth:`to_json` back (a semantic ``class_map`` is rebuilt from its segments)."""
        task = Task(d["task"])
        p = cls(task=task, width=int(d["width"]), height=int(d["height"]))
        if d.get("label"):
            p.label = ClassScore.from_json(d["label"])
        p.scores = [ClassScore.from_json(s) for s in d.get("scores", [])]
        p.tags = [ClassScore.from_json(s) for s in d.get("tags", [])]
        p.detections = [Detection.from_json(b) for b in d.get("detections", [])]
        if "segments" in d:
            cmap = np.zeros((p.height, p.width), dtype=np.int32)
            for s in d["segments"]:
                cmap[mask_from_json(s["mask"]).decode()] = int(s["class_id"])
            p.class_map = cmap
            p.scores = [ClassScore.from_json(s) for s in d["segments"]]
        return p

    def summary(self) -> str:
        """One line for people: the label, the tags, the classes present or the objects found."""
        if self.task == Task.CLASSIFICATION:
            return f"{self.label.name} ({self.label.score:.3f})" if self.label else "(no label)"
        if self.task == Task.TAGGING:
            return ", ".join(f"{t.name} ({t.score:.2f})" for t in self.tags) or "(no tags)"
        if self.class_map is not None:
            total = max(1, self.class_map.size)
            return ", ".join(f"{s.name} {float((self.class_map == s.class_id).sum()) / total:.1%}"
                             for s in self.scores) or "(nothing)"
        counts: dict[str, int] = {}
        for b in self.detections:
            counts[b.name] = counts.get(b.name, 0) + 1
        return ", ".join(f"{n} x {c}" for n, c in sorted(counts.items(), key=lambda kv: -kv[1])) or "(nothing found)"

    def to_annotation(self) -> Any:
        """The prediction as a core annotation (Label, Tags, Boxes with scores, Instances or SemanticMask)."""
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
        empty = np.zeros((self.height, self.width), bool)
        return Instances(boxes=boxes, segmentations=[d.mask if d.mask is not None else RLE.encode(empty)
                                                     for d in self.detections])


def prediction_row(image: Any, result: Prediction | BaseException) -> dict[str, Any]:
    """One line of a prediction listing: ``{"image", "prediction"}``, or ``{"image", "error"}`` for a failed image."""
    if isinstance(result, BaseException):
        return {"image": str(image), "error": str(result)}
    return {"image": str(image), "prediction": result.to_json()}
