"""Confident learning: find examples whose given label is probably wrong, from out-of-sample predicted probabilities.

Implemented from the paper (Northcutt, Jiang, Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70, 2021), section 3. Notation: ``n`` examples, ``m`` classes, ``labels`` the given (noisy) labels
ỹ (shape ``(n,)``, ints in ``0..m-1``) and ``probs`` the predicted probabilities p̂(ỹ=j; x) (shape ``(n, m)``,
rows sum to 1) of a model that never saw the example during training (cross-validation).

1. Per-class threshold ``t_j``: the mean self-confidence p̂(ỹ=j; x) of the examples labelled ``j`` (eq. 2).
2. Confident joint ``C[i, j]``: how many examples labelled ``i`` are confidently of class ``j``, i.e. have
   p̂(ỹ=j; x) >= t_j; an example above several thresholds counts once, for its most probable such class; an example
   above none is not counted (eq. 1).
3. Calibration (eq. 3): each row of ``C`` is scaled to the number of examples given that label, so the joint
   ``Q = C_cal / n`` sums to 1 and its row sums are the observed label prior.
4. The label-issue set, by one of the paper's methods (section 3.2):

   * ``confusion`` (C_confusion): the argmax of ``probs`` differs from the given label;
   * ``confident_joint`` (C_ỹ,y*): the examples counted off the diagonal of ``C``;
   * ``prune_by_class`` (PBC): for each class ``i``, the ``n * sum_{j != i} Q[i, j]`` examples labelled ``i`` with
     the lowest self-confidence;
   * ``prune_by_noise_rate`` (PBNR): for each off-diagonal ``(i, j)``, the ``n * Q[i, j]`` examples labelled ``i``
     with the largest margin p̂(ỹ=j; x) - p̂(ỹ=i; x);
   * ``both`` (C+NR): the examples both PBNR and the confident joint select.

   The default is PBNR: on BCCD crops with 5% of the labels flipped it found 84% of them at 87% precision, ``both``
   75% at 89% (benchmarks/label_errors.py).

5. A ranking score (section 3.2 / appendix): the **self-confidence** p̂(ỹ=ỹ_x; x), or the **normalized margin**
   ``(p̂(ỹ=ỹ_x; x) - max_{k != ỹ_x} p̂(ỹ=k; x) + 1) / 2``; both in 0..1, low = likely a label error.

Multi-label data (tagging) is treated one-vs-rest: each tag is a two-class problem (absent, present) with
``probs = [1 - p_k, p_k]``, see :func:`find_tag_issues`.

Everything here is plain numpy on arrays, so it works with any model's probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import AnnotationValidationError

__all__ = [
    "ConfidentJoint",
    "IssueMethod",
    "RankScore",
    "TagIssues",
    "calibrate_joint",
    "class_thresholds",
    "compute_confident_joint",
    "find_label_issues",
    "find_tag_issues",
    "label_quality",
    "normalized_margin",
    "rank_issues",
    "self_confidence",
]

_ROW_SUM_TOLERANCE = 1e-3


class IssueMethod(StrEnum):
    CONFUSION = "confusion"
    CONFIDENT_JOINT = "confident_joint"
    PRUNE_BY_CLASS = "prune_by_class"
    PRUNE_BY_NOISE_RATE = "prune_by_noise_rate"
    BOTH = "both"


class RankScore(StrEnum):
    SELF_CONFIDENCE = "self_confidence"
    NORMALIZED_MARGIN = "normalized_margin"


@dataclass(frozen=True)
class ConfidentJoint:
    """What :func:`compute_confident_joint` found (``m`` classes, ``n`` examples)."""

    thresholds: npt.NDArray[np.float64]
    """(m,) per-class thresholds t_j; ``inf`` for a class no example is labelled with."""
    counts: npt.NDArray[np.int64]
    """(m, m) the confident joint C: row = given label, column = confident (estimated true) label."""
    calibrated: npt.NDArray[np.float64]
    """(m, m) C calibrated so that row ``i`` sums to the number of examples labelled ``i`` (the total is n)."""
    confident_label: npt.NDArray[np.int64]
    """(n,) the class each example was counted under; -1 when no class reached its threshold."""

    @property
    def joint(self) -> npt.NDArray[np.float64]:
        """(m, m) the estimated joint distribution Q(ỹ, y*) (sums to 1)."""
        total = self.calibrated.sum()
        return self.calibrated / total if total > 0 else self.calibrated

    @property
    def noise_matrix(self) -> npt.NDArray[np.float64]:
        """(m, m) estimated P(ỹ = i | y* = j): the joint's columns normalised (a column without mass stays 0)."""
        col = self.calibrated.sum(axis=0, keepdims=True)
        return np.divide(self.calibrated, col, out=np.zeros_like(self.calibrated), where=col > 0)


def _check(labels: npt.ArrayLike, probs: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise AnnotationValidationError("predicted probabilities", expected="an (n, m) array with m >= 2 classes",
                                        actual=f"shape {p.shape}")
    y = np.asarray(labels)
    if y.shape != (p.shape[0],):
        raise AnnotationValidationError("labels", expected=f"one label per row of probabilities, shape ({p.shape[0]},)",
                                        actual=f"shape {y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]):
        raise AnnotationValidationError("labels", expected=f"integers in 0..{p.shape[1] - 1}",
                                        actual=f"{y.dtype} in {y.min()}..{y.max()}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise AnnotationValidationError("predicted probabilities", expected="finite numbers in 0..1",
                                        actual="values outside it")
    sums = p.sum(axis=1)
    if p.size and np.abs(sums - 1.0).max() > _ROW_SUM_TOLERANCE:
        raise AnnotationValidationError(
            "predicted probabilities", expected="rows that sum to 1", actual=f"row sums {sums.min():.4f}..{sums.max():.4f}",
            hint="pass softmax outputs; for multi-label sigmoid outputs use find_tag_issues")
    return y.astype(np.int64), p


def self_confidence(labels: npt.ArrayLike, probs: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(n,) the probability each example's given label has: p̂(ỹ=ỹ_x; x). Low: likely a label error."""
    y, p = _check(labels, probs)
    return p[np.arange(len(y)), y]


def normalized_margin(labels: npt.ArrayLike, probs: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(n,) ``(p_given - max_{k != given} p_k + 1) / 2`` in 0..1. Low: another class beats the given one."""
    y, p = _check(labels, probs)
    rows = np.arange(len(y))
    given = p[rows, y]
    others = p.copy()
    others[rows, y] = -np.inf
    return (given - others.max(axis=1) + 1.0) / 2.0


def label_quality(labels: npt.ArrayLike, probs: npt.ArrayLike,
                  score: RankScore | str = RankScore.SELF_CONFIDENCE) -> npt.NDArray[np.float64]:
    """(n,) label quality in 0..1 by ``score`` (self-confidence or normalized margin); low = likely wrong."""
    score = RankScore(score)
    if score is RankScore.SELF_CONFIDENCE:
        return self_confidence(labels, probs)
    return normalized_margin(labels, probs)


def class_thresholds(labels: npt.ArrayLike, probs: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(m,) t_j = mean of p̂(ỹ=j; x) over the examples labelled j; ``inf`` where no example is labelled j (so no
    example is ever counted as confidently of that class)."""
    y, p = _check(labels, probs)
    m = p.shape[1]
    counts = np.bincount(y, minlength=m).astype(np.float64)
    sums = np.bincount(y, weights=p[np.arange(len(y)), y], minlength=m)
    return np.divide(sums, counts, out=np.full(m, np.inf), where=counts > 0)


def calibrate_joint(counts: npt.ArrayLike, label_counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Eq. 3: scale row ``i`` of the confident joint to ``label_counts[i]`` examples. A row with no confident example
    puts all its examples on the diagonal (nothing says they are wrong)."""
    c = np.asarray(counts, dtype=np.float64)
    n_i = np.asarray(label_counts, dtype=np.float64)
    rows = c.sum(axis=1)
    out = np.divide(c * n_i[:, None], rows[:, None], out=np.zeros_like(c), where=rows[:, None] > 0)
    empty = rows == 0
    out[empty, :] = 0.0
    out[np.flatnonzero(empty), np.flatnonzero(empty)] = n_i[empty]
    return out


def compute_confident_joint(labels: npt.ArrayLike, probs: npt.ArrayLike) -> ConfidentJoint:
    """The confident joint of section 3.1: thresholds, counts, calibrated counts and each example's confident class."""
    y, p = _check(labels, probs)
    n, m = p.shape
    t = class_thresholds(y, p)
    above = p >= t[None, :]
    masked = np.where(above, p, -np.inf)
    confident = np.where(above.any(axis=1), masked.argmax(axis=1), -1).astype(np.int64)
    counted = confident >= 0
    counts = np.zeros((m, m), dtype=np.int64)
    np.add.at(counts, (y[counted], confident[counted]), 1)
    calibrated = calibrate_joint(counts, np.bincount(y, minlength=m))
    return ConfidentJoint(thresholds=t, counts=counts, calibrated=calibrated, confident_label=confident)


def _prune_by_noise_rate(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64],
                         to_prune: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    issues = np.zeros(len(y), dtype=bool)
    m = p.shape[1]
    for i in range(m):
        members = np.flatnonzero(y == i)
        for j in range(m):
            k = int(to_prune[i, j])
            if i == j or k <= 0 or members.size == 0:
                continue
            margin = p[members, j] - p[members, i]
            # stable sort: ties keep the examples' order, so the result does not depend on the platform
            order = np.argsort(-margin, kind="stable")
            issues[members[order[:k]]] = True
    return issues


def _prune_by_class(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64],
                    calibrated: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    issues = np.zeros(len(y), dtype=bool)
    for i in range(p.shape[1]):
        members = np.flatnonzero(y == i)
        k = int(np.rint(calibrated[i].sum() - calibrated[i, i]))
        if k <= 0 or members.size == 0:
            continue
        order = np.argsort(p[members, i], kind="stable")
        issues[members[order[:k]]] = True
    return issues


def find_label_issues(labels: npt.ArrayLike, probs: npt.ArrayLike,
                      method: IssueMethod | str = IssueMethod.PRUNE_BY_NOISE_RATE) -> npt.NDArray[np.bool_]:
    """(n,) True for the examples ``method`` finds probably mislabelled (see the module docstring)."""
    method = IssueMethod(method)
    y, p = _check(labels, probs)
    if method is IssueMethod.CONFUSION:
        return p.argmax(axis=1) != y
    cj = compute_confident_joint(y, p)
    off_diagonal = (cj.confident_label >= 0) & (cj.confident_label != y)
    if method is IssueMethod.CONFIDENT_JOINT:
        return off_diagonal
    # n * Q[i, j] is the calibrated count; rounded to whole examples
    if method is IssueMethod.PRUNE_BY_CLASS:
        return _prune_by_class(y, p, cj.calibrated)
    pbnr = _prune_by_noise_rate(y, p, np.rint(cj.calibrated).astype(np.int64))
    if method is IssueMethod.PRUNE_BY_NOISE_RATE:
        return pbnr
    return pbnr & off_diagonal


def rank_issues(labels: npt.ArrayLike, probs: npt.ArrayLike, issues: npt.ArrayLike | None = None,
                score: RankScore | str = RankScore.SELF_CONFIDENCE) -> npt.NDArray[np.int64]:
    """Indices of the examples, likeliest label error first: by ascending label quality (``score``); with an
    ``issues`` mask, only those examples. Ties keep index order."""
    quality = label_quality(labels, probs, score)
    idx = np.arange(len(quality)) if issues is None else np.flatnonzero(np.asarray(issues, dtype=bool))
    return idx[np.argsort(quality[idx], kind="stable")]


@dataclass(frozen=True)
class TagIssues:
    """One-vs-rest confident learning over tags (``n`` images, ``k`` tags)."""

    issues: npt.NDArray[np.bool_]
    """(n, k) True where the tag's presence or absence is probably wrong."""
    quality: npt.NDArray[np.float64]
    """(n, k) quality of each given presence/absence (low: likely wrong) by the chosen score."""

    def ranked(self) -> list[tuple[int, int]]:
        """The flagged ``(image row, tag)`` pairs, likeliest error first (ties in row, tag order)."""
        rows, tags = np.nonzero(self.issues)
        order = np.argsort(self.quality[rows, tags], kind="stable")
        return [(int(rows[o]), int(tags[o])) for o in order]


def find_tag_issues(tags: npt.ArrayLike, probs: npt.ArrayLike,
                    method: IssueMethod | str = IssueMethod.PRUNE_BY_NOISE_RATE,
                    score: RankScore | str = RankScore.SELF_CONFIDENCE) -> TagIssues:
    """Confident learning per tag: ``tags`` (n, k) 0/1 given presence, ``probs`` (n, k) predicted probability that
    each tag is present (independent sigmoids). A tag no image has, or every image has, cannot be checked and is
    left unflagged."""
    t = np.asarray(tags)
    p = np.asarray(probs, dtype=np.float64)
    if t.ndim != 2 or t.shape != p.shape:
        raise AnnotationValidationError("tags", expected="(n, k) 0/1 array shaped like the probabilities",
                                        actual=f"tags {t.shape}, probabilities {p.shape}")
    if t.size and not np.isin(t, (0, 1)).all():
        raise AnnotationValidationError("tags", expected="0/1 (or booleans)", actual="other values")
    t = t.astype(np.int64)
    issues = np.zeros(t.shape, dtype=bool)
    quality = np.ones(t.shape, dtype=np.float64)
    for k in range(t.shape[1]):
        binary = np.stack([1.0 - p[:, k], p[:, k]], axis=1)
        quality[:, k] = label_quality(t[:, k], binary, score)
        if 0 < t[:, k].sum() < len(t):
            issues[:, k] = find_label_issues(t[:, k], binary, method)
    return TagIssues(issues=issues, quality=quality)
