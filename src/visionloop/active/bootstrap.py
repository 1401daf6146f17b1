"""Paired bootstrap over test images: is the challenger better than the champion, and by how much?

Both models are scored on the same test images. A resample draws ``n`` images with replacement (seeded); both models
are scored on that same resample and the difference challenger minus champion is kept. The percentile interval of
those differences is the confidence interval (95% by default). A resample is a vector of per-image counts
(``counts[i]`` = how many times image ``i`` was drawn), so a score over a resample is a weighted score over the test
images, computed without copying data:

* classification (``accuracy``, ``balanced_accuracy``, ``macro_f1``): from the resample's weighted confusion matrix,
  exactly scikit-learn's metric with the counts as ``sample_weight`` (a bincount instead of scikit-learn's input
  checks: about 100 times faster per resample);
* detection (``map``, ``map50``, boxes or masks): pycocotools' ``COCOeval.evaluate()`` runs once per model on the
  whole test set (the per-image matching of detections to ground truth at every IoU threshold); a resample then only
  re-accumulates: each category's detections, sorted by score once, count ``counts[image]`` times in the cumulative
  true and false positives, the ground truth likewise, and the precision envelope at the 101 recall points is read
  as ``COCOeval.accumulate()`` does. This equals pycocotools run on the resampled images (each copy a new image)
  except where detections of different images have exactly equal scores (pycocotools then orders them by image id);
* semantic segmentation (``miou``): per-image intersections and unions per class, summed over the resample.

Pure functions over plain arrays (and pycocotools); no project or model here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from visionloop.core.errors import AnnotationValidationError
from visionloop.evaluation.coco_eval import coco_evaluator, to_coco_json

__all__ = [
    "BootstrapResult",
    "Scorer",
    "classification_scorer",
    "detection_scorer",
    "paired_bootstrap",
    "resample_counts",
    "semantic_scorer",
]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
DETECTION_METRICS = ("map", "map50")


@dataclass(frozen=True)
class Scorer:
    """A metric of one model over ``n`` test images: ``score(counts)`` with ``counts`` an (n,) array of how many
    times each image counts (all ones: the metric on the test set)."""

    metric: str
    n: int
    score: Callable[[np.ndarray], float]

    def full(self) -> float:
        return float(self.score(np.ones(self.n, dtype=np.int64)))


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimates on the whole test set, and the percentile CI of challenger minus champion."""

    metric: str
    champion: float
    challenger: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    images: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def resample_counts(n: int, resamples: int, *, seed: int) -> np.ndarray:
    """(resamples, n) int counts: row ``r`` says how often each image is drawn in resample ``r`` (rows sum to n)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    out = np.zeros((resamples, n), dtype=np.int64)
    np.add.at(out, (np.repeat(np.arange(resamples), n), idx.ravel()), 1)
    return out


def paired_bootstrap(
    champion: Scorer, challenger: Scorer, *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap of ``challenger - champion`` over the same resamples of the test images (seeded)."""
    if champion.n != challenger.n or champion.metric != challenger.metric:
        raise AnnotationValidationError("bootstrap scorers", expected="the same metric over the same test images",
                                        actual=f"{champion.metric} on {champion.n} vs {challenger.metric} on "
                                               f"{challenger.n}")
    if champion.n == 0:
        raise AnnotationValidationError("test images", expected="at least one", actual=0,
                                        hint="the frozen test split is empty: create versions with a test split")
    if not 0 < confidence < 1 or resamples < 1:
        raise AnnotationValidationError("bootstrap settings", expected="0 < confidence < 1 and resamples >= 1",
                                        actual=f"confidence {confidence}, resamples {resamples}")
    a, b = champion.full(), challenger.full()
    diffs = np.empty(resamples)
    for r, counts in enumerate(resample_counts(champion.n, resamples, seed=seed)):
        diffs[r] = challenger.score(counts) - champion.score(counts)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(diffs, [100 * alpha, 100 * (1 - alpha)])
    return BootstrapResult(metric=champion.metric, champion=a, challenger=b, difference=b - a, ci_low=float(low),
                           ci_high=float(high), confidence=confidence, resamples=resamples, images=champion.n,
                           seed=seed)


# ---- classification ---------------------------------------------------------------------------------------------


def classification_scorer(y_true: Sequence[int], y_pred: Sequence[int], *, metric: str = "accuracy") -> Scorer:
    """``accuracy``, ``balanced_accuracy`` or ``macro_f1`` of predicted class indexes against the true ones, from the
    resample's weighted confusion matrix, with scikit-learn's definitions (``sample_weight`` = the counts; tested equal
    to it): balanced accuracy averages the recall of the classes the resample's truth has; macro F1 averages over the
    classes of the whole test set's truth and predictions, a class with no true or predicted image scoring 0."""
    if metric not in CLASSIFICATION_METRICS:
        raise AnnotationValidationError("classification metric", expected=" | ".join(CLASSIFICATION_METRICS),
                                        actual=metric)
    y, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    labels = np.union1d(y, p)
    k = len(labels)
    cell = np.searchsorted(labels, y) * k + np.searchsorted(labels, p)

    def score(counts: np.ndarray) -> float:
        conf = np.bincount(cell, weights=counts, minlength=k * k).reshape(k, k)
        tp, truth, predicted = np.diag(conf), conf.sum(axis=1), conf.sum(axis=0)
        if metric == "accuracy":
            return float(tp.sum() / max(conf.sum(), 1))
        if metric == "balanced_accuracy":
            present = truth > 0
            return float((tp[present] / truth[present]).mean()) if present.any() else 0.0
        denominator = truth + predicted
        return float(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1e-300), 0.0).mean())

    return Scorer(metric=metric, n=len(y), score=score)


# ---- semantic segmentation --------------------------------------------------------------------------------------


def semantic_scorer(targets: Sequence[np.ndarray], preds: Sequence[np.ndarray], *, num_classes: int) -> Scorer:
    """Mean IoU over the classes present (in truth or prediction) of the resample, from per-image intersections and
    unions of (H, W) model-class maps (255 in a target: ignored), as
    :func:`visionloop.evaluation.detection.semantic_scores` counts them."""
    inter = np.zeros((len(targets), num_classes))
    union = np.zeros((len(targets), num_classes))
    for i, (gt, pred) in enumerate(zip(targets, preds, strict=True)):
        gt, pred = np.asarray(gt, np.int64), np.asarray(pred, np.int64)
        valid = gt != 255
        g, q = gt[valid], pred[valid]
        both = np.bincount(g[g == q], minlength=num_classes)[:num_classes]
        inter[i] = both
        union[i] = (np.bincount(g, minlength=num_classes)[:num_classes]
                    + np.bincount(q, minlength=num_classes)[:num_classes] - both)

    def score(counts: np.ndarray) -> float:
        i, u = counts @ inter, counts @ union
        present = u > 0
        return float((i[present] / u[present]).mean()) if present.any() else 0.0

    return Scorer(metric="miou", n=len(targets), score=score)


# ---- detection --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Category:
    """One category's detections over the test set in ``accumulate()``'s order, and its ground truth per image."""

    image: np.ndarray  # (D,) image index of each detection
    tp: np.ndarray  # (T, D) bool
    fp: np.ndarray  # (T, D) bool
    gt_per_image: np.ndarray  # (n,) non-ignored ground-truth objects


def _categories(E: Any, n_images: int) -> list[_Category]:
    """Per category (area ``all``, the last ``maxDets``), what ``COCOeval.accumulate()`` concatenates."""
    p = E.params
    n_area, max_det = len(p.areaRng), p.maxDets[-1]
    out = []
    for k in range(len(p.catIds)):
        scores, images, matched, ignored = [], [], [], []
        gt = np.zeros(n_images, dtype=np.int64)
        for i in range(len(p.imgIds)):
            e = E.evalImgs[k * n_area * len(p.imgIds) + i]
            if e is None:
                continue
            s = np.asarray(e["dtScores"][:max_det], dtype=np.float64)
            scores.append(s)
            images.append(np.full(len(s), i, dtype=np.int64))
            matched.append(np.asarray(e["dtMatches"])[:, :max_det].reshape(len(p.iouThrs), -1))
            ignored.append(np.asarray(e["dtIgnore"])[:, :max_det].reshape(len(p.iouThrs), -1))
            gt[i] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
        if scores:
            s = np.concatenate(scores)
            order = np.argsort(-s, kind="mergesort")
            dtm = np.concatenate(matched, axis=1)[:, order]
            dtig = np.concatenate(ignored, axis=1)[:, order].astype(bool)
            img = np.concatenate(images)[order]
        else:
            dtm = dtig = np.zeros((len(p.iouThrs), 0), dtype=bool)
            img = np.zeros(0, dtype=np.int64)
        out.append(_Category(image=img, tp=(dtm != 0) & ~dtig, fp=(dtm == 0) & ~dtig, gt_per_image=gt))
    return out


def _category_precision(cat: _Category, counts: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray | None:
    """(T, R) interpolated precision of one category over a resample; None when it has no ground truth there."""
    npig = int(counts @ cat.gt_per_image)
    if npig == 0:
        return None
    w = counts[cat.image]
    keep = w > 0
    w = w[keep].astype(np.float64)
    n_t = cat.tp.shape[0]
    q = np.zeros((n_t, len(rec_thrs)))
    if not keep.any():
        return q
    tps = np.cumsum(cat.tp[:, keep] * w, axis=1)
    fps = np.cumsum(cat.fp[:, keep] * w, axis=1)
    rc = tps / npig
    pr = tps / (fps + tps + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    for t in range(n_t):
        inds = np.searchsorted(rc[t], rec_thrs, side="left")
        ok = inds < rc.shape[1]
        q[t, ok] = pr[t, inds[ok]]
    return q


def detection_scorer(
    gts: Sequence[Any], preds: Sequence[Any], *, sizes: Sequence[tuple[int, int]], labels: Sequence[int],
    metric: str = "map", iou_type: str = "bbox", max_dets: int = 100,
) -> Scorer:
    """COCO ``map`` (AP@[.5:.95]) or ``map50`` of ``preds`` against ``gts`` (Boxes/Instances, model labels
    ``labels``; ``sizes`` (height, width)), re-accumulated per resample from one ``COCOeval.evaluate()``."""
    if metric not in DETECTION_METRICS:
        raise AnnotationValidationError("detection metric", expected=" | ".join(DETECTION_METRICS), actual=metric)
    gt_json, results = to_coco_json(gts, list(preds), sizes=sizes, labels=labels, iou_type=iou_type)  # type: ignore[arg-type]
    E = coco_evaluator(gt_json, results, iou_type=iou_type, max_dets=max_dets)  # type: ignore[arg-type]
    if list(E.params.imgIds) != list(range(1, len(gts) + 1)):
        raise AssertionError("pycocotools reordered the images")  # to_coco_json numbers them 1..n in order
    cats = _categories(E, len(gts))
    rec_thrs = np.asarray(E.params.recThrs)
    n_t = 1 if metric == "map50" else len(E.params.iouThrs)

    def score(counts: np.ndarray) -> float:
        per = [q[:n_t] for c in cats if (q := _category_precision(c, counts, rec_thrs)) is not None]
        return float(np.mean(per)) if per else -1.0

    return Scorer(metric=metric, n=len(gts), score=score)
