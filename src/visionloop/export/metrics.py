"""The main metric per task, computed from runtime predictions (numpy only) for the int8 accuracy guard.

- classification: ``balanced_accuracy`` (mean per-class recall; what classification training monitors)
- tagging: ``mAP`` (mean over classes with positives of average precision; what tagging training monitors)
- detection and instance segmentation: ``map50`` (box AP at IoU 0.5, all-point interpolation, mean over classes)
- semantic segmentation: ``miou`` (mean IoU over classes present in targets or predictions, ignore pixels skipped)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from visionloop.core.task import Task
from visionloop.inference.results import Prediction

__all__ = ["MAIN_METRIC", "box_iou", "main_metric", "map50"]

MAIN_METRIC = {Task.CLASSIFICATION: "balanced_accuracy", Task.TAGGING: "mAP", Task.DETECTION: "map50",
               Task.SEGMENTATION: "map50"}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def map50(preds: Sequence[Prediction], targets: Sequence[Any]) -> float:
    """Box mAP at IoU 0.5 over images; ``targets`` are core Boxes or Instances (``.boxes``)."""
    per_class: dict[int, list[tuple[float, bool]]] = {}
    n_gt: dict[int, int] = {}
    for pred, tgt in zip(preds, targets, strict=True):
        boxes = getattr(tgt, "boxes", tgt)
        gt_xyxy, gt_cls = np.asarray(boxes.xyxy).reshape(-1, 4), np.asarray(boxes.class_id).reshape(-1)
        for c in gt_cls.tolist():
            n_gt[c] = n_gt.get(c, 0) + 1
        used = np.zeros(len(gt_cls), bool)
        for d in sorted(pred.detections, key=lambda d: -d.score):
            same = np.flatnonzero((gt_cls == d.class_id) & ~used)
            hit = False
            if len(same):
                ious = box_iou(np.asarray([d.xyxy]), gt_xyxy[same])[0]
                j = int(np.argmax(ious))
                if ious[j] >= 0.5:
                    used[same[j]], hit = True, True
            per_class.setdefault(d.class_id, []).append((d.score, hit))
    aps = []
    for c, n in n_gt.items():
        dets = sorted(per_class.get(c, []), key=lambda t: -t[0])
        if not dets:
            aps.append(0.0)
            continue
        tp = np.cumsum([h for _, h in dets])
        fp = np.cumsum([not h for _, h in dets])
        recall = tp / n
        precision = tp / np.maximum(tp + fp, 1e-12)
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[1.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        idx = np.flatnonzero(mrec[1:] != mrec[:-1])
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)) if aps else 0.0


def main_metric(task: Task | str, preds: Sequence[Prediction], targets: Sequence[Any]) -> tuple[str, float]:
    """(name, value) of the task's main metric; ``targets`` are core annotations aligned with ``preds``."""
    task = Task(task)
    if len(preds) != len(targets) or not preds:
        raise ValueError(f"need aligned, non-empty predictions and targets (got {len(preds)} and {len(targets)})")
    if task == Task.CLASSIFICATION:
        y = np.asarray([t.class_id for t in targets])
        got = np.asarray([p.label.class_id if p.label is not None else -1 for p in preds])
        recalls = [float(np.mean(got[y == c] == c)) for c in np.unique(y)]
        return "balanced_accuracy", float(np.mean(recalls))
    if task == Task.TAGGING:
        from sklearn.metrics import average_precision_score

        ids = sorted({s.class_id for p in preds for s in p.scores})
        col = {c: i for i, c in enumerate(ids)}
        y = np.zeros((len(preds), len(ids)), np.int8)
        scores = np.zeros((len(preds), len(ids)), np.float64)
        for r, (p, t) in enumerate(zip(preds, targets, strict=True)):
            for c in t.class_ids:
                if c in col:
                    y[r, col[c]] = 1
            for s in p.scores:
                scores[r, col[s.class_id]] = s.score
        aps = [float(average_precision_score(y[:, j], scores[:, j])) for j in range(len(ids)) if y[:, j].any()]
        return "mAP", float(np.mean(aps)) if aps else 0.0
    if task == Task.SEGMENTATION and preds[0].class_map is not None:
        inter: dict[int, int] = {}
        union: dict[int, int] = {}
        for p, t in zip(preds, targets, strict=True):
            gt, pm = np.asarray(t.mask), np.asarray(p.class_map)
            valid = gt != t.ignore_index
            for c in set(np.unique(gt[valid]).tolist()) | set(np.unique(pm[valid]).tolist()):
                g, q = (gt == c) & valid, (pm == c) & valid
                inter[c] = inter.get(c, 0) + int((g & q).sum())
                union[c] = union.get(c, 0) + int((g | q).sum())
        return "miou", float(np.mean([inter[c] / union[c] for c in union if union[c] > 0]))
    return "map50", map50(preds, targets)
