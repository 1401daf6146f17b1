"""How well one annotation agrees with another: honeypot scoring (an answer against the gold) and the agreement of
annotators on a consensus image. Pure functions over :mod:`visionloop.core.annotations` values.

- labels: 1 when the class is the same, else 0;
- tags: Jaccard index of the two sets of classes (two empty sets agree fully);
- boxes and instances: one-to-one matching (Hungarian, :func:`scipy.optimize.linear_sum_assignment`) on the IoU of
  boxes, or of masks for instances (pycocotools), among pairs at or above ``iou_threshold``; a matched pair of the
  same class is a true positive, one of another class a ``wrong_class``. Precision = TP / answer's objects, recall =
  TP / reference's objects, score = F1; ``mean_iou`` over the true positives;
- semantic masks: IoU per class present in either mask over the pixels the reference labels (a pixel the answer
  leaves unlabelled is a miss), score = their mean.

``score`` is always in [0, 1], 1 for a perfect match (two empty annotations agree fully).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from visionloop.core.annotations import RLE, Annotation, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import AnnotationValidationError

__all__ = ["Agreement", "agreement", "box_iou", "instance_rles", "mask_iou", "match_pairs"]


@dataclass(frozen=True)
class Agreement:
    """The agreement of an answer with a reference; counts are of objects (boxes, instances, tags)."""

    kind: str
    score: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    mean_iou: float | None = None
    matched: int = 0
    missed: int = 0
    extra: int = 0
    wrong_class: int = 0
    per_class_iou: dict[int, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("kind", "score", "precision", "recall", "f1", "mean_iou", "matched",
                                              "missed", "extra", "wrong_class")}
        out["per_class_iou"] = {str(c): v for c, v in self.per_class_iou.items()}
        return out


def _xywh(xyxy: np.ndarray) -> np.ndarray:
    out = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 2:] -= out[:, :2]
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), xyxy pixels (pycocotools)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.asarray(mask_utils.iou(_xywh(a), _xywh(b), [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def instance_rles(ann: Instances, size: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """Each instance's mask as a COCO RLE; ``size`` (height, width) is needed for polygons only."""
    out = []
    for seg in ann.segmentations:
        if isinstance(seg, RLE):
            out.append(seg.to_coco())
            continue
        if size is None:
            raise AnnotationValidationError("image size", expected="(height, width) to rasterise polygons",
                                            actual=None)
        h, w = size
        out.append(mask_utils.merge(mask_utils.frPyObjects([list(map(float, r)) for r in seg], h, w)))
    return out


def mask_iou(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> np.ndarray:
    """(N, M) IoU of COCO RLE masks."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    return np.asarray(mask_utils.iou(a, b, [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def match_pairs(iou: np.ndarray, same_class: np.ndarray, iou_threshold: float) -> list[tuple[int, int]]:
    """One-to-one pairs (row, column) with IoU >= ``iou_threshold``, maximising first the number of same-class
    pairs, then the summed IoU (Hungarian). ``same_class``: (N, M) bool."""
    if iou.size == 0:
        return []
    eligible = iou >= iou_threshold
    gain = np.where(eligible, iou + same_class.astype(np.float64) * (1.0 + iou.shape[0] + iou.shape[1]), 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if eligible[r, c]]


def _ratio(num: int, den: int) -> float:
    return num / den if den else 1.0


def _objects(kind: str, iou: np.ndarray, ref: np.ndarray, ans: np.ndarray, thr: float) -> Agreement:
    pairs = match_pairs(iou, ref[:, None] == ans[None, :], thr)
    tp = [(r, c) for r, c in pairs if ref[r] == ans[c]]
    precision, recall = _ratio(len(tp), len(ans)), _ratio(len(tp), len(ref))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Agreement(kind=kind, score=f1, precision=precision, recall=recall, f1=f1,
                     mean_iou=float(np.mean([iou[r, c] for r, c in tp])) if tp else None,
                     matched=len(tp), missed=len(ref) - len(tp), extra=len(ans) - len(tp),
                     wrong_class=len(pairs) - len(tp))


def _semantic(ref: SemanticMask, ans: SemanticMask) -> Agreement:
    if ref.mask.shape != ans.mask.shape:
        raise AnnotationValidationError("semantic mask size", expected=ref.mask.shape, actual=ans.mask.shape)
    valid = ref.mask != ref.ignore_index  # what the reference leaves unlabelled is not scored
    a = ref.mask[valid]
    b = np.where(ans.mask == ans.ignore_index, -1, ans.mask)[valid]  # left unlabelled by the answer: a miss
    per_class = {}
    for c in sorted(set(ref.class_ids()) | set(ans.class_ids())):
        union = int(np.count_nonzero((a == c) | (b == c)))
        if union:
            per_class[int(c)] = int(np.count_nonzero((a == c) & (b == c))) / union
    score = float(np.mean(list(per_class.values()))) if per_class else 1.0
    return Agreement(kind="semantic", score=score, mean_iou=score, per_class_iou=per_class)


def agreement(
    reference: Annotation, answer: Annotation, *, iou_threshold: float = 0.5, size: tuple[int, int] | None = None,
) -> Agreement:
    """The agreement of ``answer`` with ``reference`` (same annotation type). ``size`` (height, width) of the image
    is needed only for instances outlined by polygons."""
    if type(reference) is not type(answer):
        raise AnnotationValidationError("answer type", expected=type(reference).__name__,
                                        actual=type(answer).__name__)
    if isinstance(reference, Label) and isinstance(answer, Label):
        same = reference.class_id == answer.class_id
        return Agreement(kind="label", score=float(same), matched=int(same), wrong_class=int(not same))
    if isinstance(reference, Tags) and isinstance(answer, Tags):
        ref, ans = reference.class_ids, answer.class_ids
        both = len(ref & ans)
        return Agreement(kind="tags", score=_ratio(both, len(ref | ans)), precision=_ratio(both, len(ans)),
                         recall=_ratio(both, len(ref)), matched=both, missed=len(ref - ans), extra=len(ans - ref))
    if isinstance(reference, Boxes) and isinstance(answer, Boxes):
        return _objects("boxes", box_iou(reference.xyxy, answer.xyxy), reference.class_id, answer.class_id,
                        iou_threshold)
    if isinstance(reference, Instances) and isinstance(answer, Instances):
        iou = mask_iou(instance_rles(reference, size), instance_rles(answer, size))
        return _objects("instances", iou, reference.boxes.class_id, answer.boxes.class_id, iou_threshold)
    if isinstance(reference, SemanticMask) and isinstance(answer, SemanticMask):
        return _semantic(reference, answer)
    raise AnnotationValidationError("annotation", expected="Label, Tags, Boxes, Instances or SemanticMask",
                                    actual=type(reference).__name__)
