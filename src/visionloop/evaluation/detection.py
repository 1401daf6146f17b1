"""Detection and segmentation metrics, and ``evaluate_run`` for detection/segmentation runs.

* COCO mAP@[.5:.95], AP50, AP75, AP by object size, AR, per-class AP for boxes (``bbox``) and masks (``segm``),
  computed by pycocotools (:mod:`visionloop.evaluation.coco_eval`), so they equal pycocotools on the exported JSON
  (``coco_gt.json`` / ``coco_results_<type>.json`` in the run directory).
* Precision-recall curves per class at IoU 0.5 with the score threshold that maximises F1 (what ``predict`` should
  use), and the precision/recall there.
* A detection confusion matrix (K + 1 rows/columns, the last is "background": a missed object is (class, background),
  a false alarm (background, class)), from greedy matching at IoU 0.5 above the chosen thresholds.
* Per image: true positives, false positives and false negatives at those thresholds.
* Semantic segmentation: per-class IoU and mean IoU (over classes present in ground truth or prediction), pixel
  accuracy, and the image-level Jaccard score: the fraction of images whose foreground IoU with the ground truth is
  over 0.5. For instance segmentation the same image-level Jaccard is computed on the union of instance masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou as tv_box_iou

from visionloop.core.annotations import Boxes, Instances, boxes_of
from visionloop.evaluation.coco_eval import coco_evaluate, to_coco_json

__all__ = [
    "above_thresholds",
    "auto_max_dets",
    "box_iou",
    "coco_metrics",
    "confusion_and_matches",
    "image_jaccard",
    "likely_unlabelled",
    "pr_curves",
    "coco_scores",
    "evaluation_ground_truth",
    "semantic_metrics",
    "semantic_scores",
    "semantic_target",
]


def auto_max_dets(annotations: Sequence[Any], default: int = 100) -> int:
    """COCO's 100 detections per image, raised (to the next hundred) when an image has more ground-truth objects."""
    most = max((len(a) for a in annotations if isinstance(a, Boxes | Instances)), default=0)
    return max(default, int(np.ceil(most * 1.2 / 100.0)) * 100)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes given as arrays: ``torchvision.ops.box_iou`` (0 where both boxes are empty)."""
    ta = torch.as_tensor(np.asarray(a, dtype=np.float64).reshape(-1, 4))
    tb = torch.as_tensor(np.asarray(b, dtype=np.float64).reshape(-1, 4))
    return np.nan_to_num(tv_box_iou(ta, tb).numpy(), nan=0.0)


def coco_metrics(dataset: Any, preds: Sequence[Boxes | Instances], *, masks: bool = False, max_dets: int = 100,
                 names: Sequence[str] | None = None) -> dict[str, Any]:
    """``{"bbox": {...}, "segm": {...}}`` of COCO stats + per-class AP; ``dataset`` is a DetectionDataset."""
    return coco_scores([dataset.ground_truth(i) for i in range(len(dataset))], preds,
                       sizes=[dataset.size(i) for i in range(len(dataset))], labels=sorted(set(dataset.labels.values())),
                       masks=masks, max_dets=max_dets, names=names)


def coco_scores(gts: Sequence[Boxes | Instances], preds: Sequence[Boxes | Instances], *,
                sizes: Sequence[tuple[int, int]], labels: Sequence[int], masks: bool = False, max_dets: int = 100,
                names: Sequence[str] | None = None) -> dict[str, Any]:
    """As :func:`coco_metrics` from aligned ground truths and predictions (``sizes`` (height, width), category ids
    ``labels``): the one mAP of evaluation, the export manifest and the int8 guard (pycocotools)."""
    out: dict[str, Any] = {}
    for iou_type in (["bbox", "segm"] if masks else ["bbox"]):
        gt_json, res = to_coco_json(gts, list(preds), sizes=sizes, labels=labels, names=names, iou_type=iou_type)
        r = coco_evaluate(gt_json, res, iou_type=iou_type, max_dets=max_dets)
        out[iou_type] = {**r.stats, "per_class": r.per_class, "result": r, "gt_json": gt_json, "results": res}
    return out


def evaluation_ground_truth(ann: Boxes | Instances | None, class_ids: Sequence[int]) -> Boxes | Instances:
    """The objects of ``ann`` that evaluation scores, as the detection datasets keep them: a class of ``class_ids``
    and a box at least one pixel wide and high (class ids unchanged)."""
    boxes = boxes_of(ann)
    wh = boxes.xyxy[:, 2:] - boxes.xyxy[:, :2]
    keep = [i for i, c in enumerate(boxes.class_id.tolist()) if c in set(class_ids) and wh[i].min() >= 1]
    out = Boxes(boxes.xyxy[keep], boxes.class_id[keep])
    return Instances(out, [ann.segmentations[i] for i in keep]) if isinstance(ann, Instances) else out


def pr_curves(gts: Sequence[Boxes], preds: Sequence[Boxes], labels: Sequence[int], *, iou: float = 0.5,
              ) -> dict[int, dict[str, Any]]:
    """Per label: precision/recall/score arrays along decreasing score (greedy matching at ``iou``, COCO-style:
    each prediction, by descending score, takes the best still-unmatched ground truth), the F1-best threshold and
    the precision, recall and F1 there."""
    out: dict[int, dict[str, Any]] = {}
    for c in labels:
        scores, tps, n_gt = [], [], 0
        for g, p in zip(gts, preds, strict=True):
            gb = g.xyxy[g.class_id == c]
            n_gt += len(gb)
            sel = p.class_id == c
            pb, ps = p.xyxy[sel], (p.score[sel] if p.score is not None else np.ones(sel.sum()))
            order = np.argsort(-ps, kind="mergesort")
            ious = box_iou(pb[order], gb)
            used = np.zeros(len(gb), bool)
            for k, j in enumerate(order):
                scores.append(float(ps[j]))
                if len(gb):
                    cand = np.where(used, -1.0, ious[k])
                    best = int(np.argmax(cand))
                    if cand[best] >= iou:
                        used[best] = True
                        tps.append(1)
                        continue
                tps.append(0)
        order = np.argsort(-np.asarray(scores), kind="mergesort")
        s = np.asarray(scores)[order]
        tp = np.cumsum(np.asarray(tps)[order]) if len(order) else np.zeros(0)
        fp = np.arange(1, len(tp) + 1) - tp
        precision = tp / np.maximum(tp + fp, 1)
        recall = tp / max(n_gt, 1)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        k = int(np.argmax(f1)) if len(f1) else -1
        out[c] = {"precision": precision, "recall": recall, "scores": s, "n_gt": n_gt,
                  "threshold": float(s[k]) if k >= 0 else 0.5,
                  "precision_at": float(precision[k]) if k >= 0 else 0.0,
                  "recall_at": float(recall[k]) if k >= 0 else 0.0, "f1_at": float(f1[k]) if k >= 0 else 0.0}
    return out


def confusion_and_matches(gts: Sequence[Boxes], preds: Sequence[Boxes], labels: Sequence[int],
                          thresholds: dict[int, float], *, iou: float = 0.5) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Detection confusion matrix ((K+1) x (K+1), rows = ground truth, columns = prediction, last = background) and
    per image ``{"tp": [(pred, gt)], "fp": [pred], "fn": [gt], "confused": [(pred, gt)]}`` index lists.

    Predictions below their class threshold are dropped; the rest are matched greedily by descending score to the
    unmatched ground truth of highest IoU (any class) at ``iou``; a match of another class counts as confusion.
    """
    index = {c: i for i, c in enumerate(labels)}
    k = len(labels)
    cm = np.zeros((k + 1, k + 1), dtype=np.int64)
    per_image = []
    for g, p in zip(gts, preds, strict=True):
        ps = p.score if p.score is not None else np.ones(len(p))
        keep = sorted(above_thresholds(p, thresholds), key=lambda j: -ps[j])
        ious = box_iou(p.xyxy[keep], g.xyxy)
        used = np.zeros(len(g), bool)
        rec: dict[str, Any] = {"tp": [], "fp": [], "fn": [], "confused": []}
        for r, j in enumerate(keep):
            if len(g):
                cand = np.where(used, -1.0, ious[r])
                same = np.where(g.class_id == p.class_id[j], cand, -1.0)
                best = int(np.argmax(same)) if same.max() >= iou else int(np.argmax(cand))
                if cand[best] >= iou:
                    used[best] = True
                    gi, pi = index[int(g.class_id[best])], index[int(p.class_id[j])]
                    cm[gi, pi] += 1
                    rec["tp" if gi == pi else "confused"].append((j, best))
                    continue
            cm[k, index[int(p.class_id[j])]] += 1
            rec["fp"].append(j)
        for gi in np.flatnonzero(~used):
            cm[index[int(g.class_id[gi])], k] += 1
            rec["fn"].append(int(gi))
        per_image.append(rec)
    return cm, per_image


def above_thresholds(pred: Boxes, thresholds: dict[int, float], default: float = 0.5) -> list[int]:
    """Indexes of the predictions scored at least their class's threshold (all of them when unscored)."""
    if pred.score is None:
        return list(range(len(pred)))
    return [j for j in range(len(pred)) if pred.score[j] >= thresholds.get(int(pred.class_id[j]), default)]


def likely_unlabelled(gt: Boxes, pred: Boxes, fp: Sequence[int], *, min_score: float = 0.9,
                      max_iou: float = 0.1) -> list[int]:
    """The false positives ``fp`` scored at least ``min_score`` that overlap no labelled object (IoU below
    ``max_iou`` with every ground-truth box of any class): on real data these are mostly objects the annotator
    skipped, so they belong in the review queue rather than in the model's error count."""
    if pred.score is None:
        return []
    confident = [j for j in fp if pred.score[j] >= min_score]
    if not confident or not len(gt):
        return confident
    overlap = box_iou(pred.xyxy[confident], gt.xyxy).max(axis=1)
    return [j for j, o in zip(confident, overlap, strict=True) if o < max_iou]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def image_jaccard(gt_masks: Sequence[np.ndarray], pred_masks: Sequence[np.ndarray], *, threshold: float = 0.5,
                  ) -> dict[str, Any]:
    """Image-level Jaccard: per image the IoU of the foreground masks; ``score`` = fraction of images with IoU over
    ``threshold``; also the mean IoU over images and each image's IoU."""
    ious = [_iou(np.asarray(g, bool), np.asarray(p, bool)) for g, p in zip(gt_masks, pred_masks, strict=True)]
    arr = np.asarray(ious)
    return {"score": float((arr > threshold).mean()) if len(arr) else 0.0,
            "mean_iou": float(arr.mean()) if len(arr) else 0.0, "threshold": threshold, "per_image": ious}


def semantic_metrics(dataset: Any, preds: Sequence[np.ndarray], *, num_classes: int,
                     names: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`semantic_scores` of the (H, W) class maps ``preds`` against a SemanticDataset's target masks."""
    targets = [dataset.target_mask(i, *pred.shape) for i, pred in enumerate(preds)]
    return semantic_scores(targets, preds, num_classes=num_classes, names=names)


def semantic_target(ann: Any, index: dict[int, int], height: int, width: int) -> np.ndarray:
    """(H, W) model classes of a SemanticMask or Instances annotation (``index``: project class id -> model class;
    unlabelled pixels 255; instances: unmasked pixels are class 0), as the semantic datasets build their targets."""
    out = np.full((height, width), 255, dtype=np.int64)
    if isinstance(ann, Instances):
        out[:] = 0
        for i, cid in enumerate(ann.boxes.class_id.tolist()):
            if cid in index:
                out[ann.mask(i, height, width)] = index[cid]
    elif ann is not None:
        for cid, idx in index.items():
            out[np.asarray(ann.mask) == cid] = idx
    return out


def semantic_scores(targets: Sequence[np.ndarray], preds: Sequence[np.ndarray], *, num_classes: int,
                    names: Sequence[str] | None = None) -> dict[str, Any]:
    """Per-class IoU, mean IoU (``miou``), pixel accuracy and image-level Jaccard of (H, W) model-class maps against
    targets of the same size (255 ignored): the one mIoU of evaluation, the export manifest and the int8 guard.

    ``miou`` averages the classes present in ground truth or prediction; the image-level Jaccard uses the
    foreground (every class except index 0) when there are several classes, else class 0.
    """
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    fg_gt, fg_pred = [], []
    for gt, pred in zip(targets, preds, strict=True):
        gt, pred = np.asarray(gt, np.int64), np.asarray(pred, np.int64)
        valid = gt != 255
        conf += np.bincount(gt[valid] * num_classes + pred[valid], minlength=num_classes ** 2).reshape(
            num_classes, num_classes)
        fg_gt.append((gt > 0) & valid if num_classes > 1 else gt == 0)
        fg_pred.append((pred > 0) & valid if num_classes > 1 else (pred == 0) & valid)
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    names = list(names) if names is not None else [str(c) for c in range(num_classes)]
    return {
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
        "pixel_accuracy": float(inter.sum() / max(conf.sum(), 1)),
        "per_class": {n: {"iou": None if np.isnan(v) else float(v)} for n, v in zip(names, iou, strict=True)},
        "confusion": conf.tolist(),
        "image_jaccard": image_jaccard(fg_gt, fg_pred),
    }
