"""Metrics for classification (one label per image) and tagging (a set of labels per image).

Inputs are plain arrays so any model can be scored: ``probs`` (N, C) softmax probabilities (classification) or sigmoid
scores (tagging); ``y`` (N,) class indexes or (N, C) 0/1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from visionloop.evaluation.calibration import expected_calibration_error, reliability_bins

__all__ = ["classification_metrics", "pr_curves", "tagging_metrics", "top_k_accuracy"]


def top_k_accuracy(y: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the ``k`` highest scores (``sklearn.metrics.top_k_accuracy_score``;
    1.0 when ``k`` covers every class)."""
    c = probs.shape[1]
    if not len(y):
        return 0.0
    if k >= c:
        return 1.0
    scores = probs[:, 1] if c == 2 else probs  # scikit-learn takes the positive-class score for two classes
    return float(top_k_accuracy_score(y, scores, k=k, labels=list(range(c))))


def _curve(y: np.ndarray, s: np.ndarray, max_points: int = 200) -> dict[str, list[float]]:
    if y.sum() == 0:
        return {"precision": [], "recall": [], "thresholds": []}
    p, r, t = precision_recall_curve(y, s)
    idx = np.unique(np.linspace(0, len(t) - 1, min(len(t), max_points)).round().astype(int)) if len(t) else []
    return {"precision": [float(p[i]) for i in idx], "recall": [float(r[i]) for i in idx],
            "thresholds": [float(t[i]) for i in idx]}


def pr_curves(y_onehot: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """One-vs-rest precision-recall curve per class (down-sampled to <= 200 points)."""
    return {n: _curve(y_onehot[:, k].astype(bool), scores[:, k]) for k, n in enumerate(names)}


def _ap(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(average_precision_score(y, s)) if 0 < y.sum() < len(y) else None


def classification_metrics(y: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, top-1/top-5, balanced accuracy, per-class P/R/F1/support/AP, confusion matrix, ECE, PR curves."""
    y = np.asarray(y, np.int64)
    c = len(names)
    pred = probs.argmax(axis=1) if len(y) else np.zeros(0, np.int64)
    labels = list(range(c))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    onehot = np.eye(c)[y] if len(y) else np.zeros((0, c))
    per_class = {
        n: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(s[k]),
            "ap": _ap(onehot[:, k], probs[:, k])}
        for k, n in enumerate(names)
    }
    present = [k for k in labels if s[k] > 0]
    conf = probs.max(axis=1) if len(y) else np.zeros(0)
    correct = pred == y
    return {
        "task": "classification",
        "n": int(len(y)),
        "accuracy": float(correct.mean()) if len(y) else 0.0,
        "top1": float(correct.mean()) if len(y) else 0.0,
        "top5": top_k_accuracy(y, probs, 5),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if len(y) else 0.0,
        "macro_f1": float(np.mean([f[k] for k in present])) if present else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist() if len(y) else [[0] * c] * c,
        "classes": list(names),
        "ece": expected_calibration_error(conf, correct),
        "reliability": reliability_bins(conf, correct),
        "pr_curves": pr_curves(onehot, probs, names),
    }


def tagging_metrics(y: np.ndarray, scores: np.ndarray, names: Sequence[str], *,
                    thresholds: Sequence[float] | None = None) -> dict[str, Any]:
    """mAP (mean of per-class AP over classes with positives and negatives), per-class AP and P/R/F1 at the chosen
    thresholds, exact-match ("accuracy": every tag right), per-class balanced accuracy mean, micro F1, ECE, PR curves."""
    y = np.asarray(y) > 0.5
    c = len(names)
    th = np.asarray(thresholds if thresholds is not None else [0.5] * c, np.float64)
    pred = scores >= th[None, :]
    per_class: dict[str, Any] = {}
    aps, bals = [], []
    for k, n in enumerate(names):
        yk, pk = y[:, k], pred[:, k]
        tp, fp, fn = int((yk & pk).sum()), int((~yk & pk).sum()), int((yk & ~pk).sum())
        tn = int((~yk & ~pk).sum())
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        ap = _ap(yk, scores[:, k])
        if ap is not None:
            aps.append(ap)
        spec = tn / (tn + fp) if tn + fp else 0.0
        if tp + fn and tn + fp:
            bals.append((rec + spec) / 2)
        per_class[n] = {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                        "support": int(yk.sum()), "ap": ap, "threshold": float(th[k])}
    tp, fp, fn = int((y & pred).sum()), int((~y & pred).sum()), int((y & ~pred).sum())
    micro_f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    flat_s, flat_y = scores.ravel(), y.ravel()
    conf = np.where(flat_s >= 0.5, flat_s, 1 - flat_s)
    correct = (flat_s >= 0.5) == flat_y
    return {
        "task": "tagging",
        "n": int(len(y)),
        "mAP": float(np.mean(aps)) if aps else 0.0,
        "accuracy": float((pred == y).all(axis=1).mean()) if len(y) else 0.0,
        "balanced_accuracy": float(np.mean(bals)) if bals else 0.0,
        "micro_f1": micro_f1,
        "per_class": per_class,
        "classes": list(names),
        "thresholds": [float(t) for t in th],
        "ece": expected_calibration_error(conf, correct),
        "reliability": reliability_bins(conf, correct),
        "pr_curves": pr_curves(y.astype(np.float64), scores, names),
    }
