"""Per-class decision thresholds on sigmoid scores (tagging), chosen on the validation split."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from visionloop.core.errors import AnnotationValidationError

__all__ = ["choose_thresholds", "threshold_for"]


def threshold_for(y: np.ndarray, score: np.ndarray, *, mode: str = "f1", target: float | None = None) -> float:
    """One class: ``y`` (N,) 0/1, ``score`` (N,) in 0..1.

    ``mode="f1"``: the threshold with the best F1. ``"precision"``: the lowest threshold whose precision >= target
    (most recall at that precision). ``"recall"``: the highest threshold whose recall >= target (most precision).
    Falls back to 0.5 when the class has no positive example.
    """
    if mode not in {"f1", "precision", "recall"}:
        raise AnnotationValidationError("threshold mode", expected="f1, precision or recall", actual=mode)
    if mode != "f1" and (target is None or not 0 < target <= 1):
        raise AnnotationValidationError("threshold target", expected="a number in (0, 1]", actual=target)
    y = np.asarray(y).astype(bool)
    if y.sum() == 0 or y.all():
        return 0.5
    p, r, t = precision_recall_curve(y, score)
    p, r = p[:-1], r[:-1]  # the last point has no threshold
    if mode == "f1":
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0)
        i = int(np.argmax(f1))
        # midway to the next lower score is more robust than the exact score of one validation image
        return float(t[i])
    if mode == "precision":
        ok = np.flatnonzero(p >= target)  # type: ignore[operator]
        return float(t[ok[0]]) if ok.size else float(t[-1])
    ok = np.flatnonzero(r >= target)  # type: ignore[operator]
    return float(t[ok[-1]]) if ok.size else float(t[0])


def choose_thresholds(
    y: np.ndarray, scores: np.ndarray, *, mode: str = "f1", targets: float | list[float] | None = None,
) -> list[float]:
    """Thresholds for each column of ``scores`` (N, C) given ``y`` (N, C) 0/1; ``targets`` one value or one per class."""
    c = scores.shape[1]
    tg = targets if isinstance(targets, list) else [targets] * c
    if len(tg) != c:
        raise AnnotationValidationError("threshold targets", expected=f"{c} values (one per class)", actual=len(tg))
    return [threshold_for(y[:, k], scores[:, k], mode=mode, target=tg[k]) for k in range(c)]
