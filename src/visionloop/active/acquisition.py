"""Acquisition functions: how unsure a model is about each image, as plain numbers over plain arrays.

Every scorer returns one float per image, larger = more worth labelling, in 0..1:

* classification over class probabilities ``probs`` (N, C) (rows sum to 1):
  :func:`entropy` (normalised by ``log C``), :func:`margin` (``1 - (p1 - p2)``, the best two classes) and
  :func:`least_confidence` (``1 - p1``, scaled by ``C / (C - 1)`` so a uniform row scores 1);
* multi-label tagging over per-tag probabilities (N, T): :func:`tag_entropy`, the binary entropy of each tag (in
  bits) averaged over the tags;
* detection over box scores: :func:`box_uncertainty` per box (``entropy``: binary entropy of the score in bits, or
  ``distance``: ``1 - |2s - 1|``, both 1 at s = 0.5 and 0 at s = 0 or 1), aggregated per image by
  :func:`aggregate_boxes` (``topk_mean`` by default; ``max``, ``mean``, ``sum``). See :func:`detection_uncertainty`
  for why the default is the mean of the top-k and what an image without boxes scores.

No torch here: the model server and the benchmarks use these on numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from visionloop.core.errors import AnnotationValidationError

__all__ = ["BOX_AGGREGATES", "DEFAULT_TOP_K", "EMPTY_IMAGE_SCORE", "Acquisition", "aggregate_boxes",
           "binary_entropy", "box_uncertainty", "classification_scores", "detection_uncertainty", "entropy",
           "least_confidence", "margin", "tag_entropy"]

_EPS = 1e-12
BOX_AGGREGATES = ("topk_mean", "max", "mean", "sum")
DEFAULT_TOP_K = 3
"""Boxes the default ``topk_mean`` aggregate averages over."""
EMPTY_IMAGE_SCORE = 0.5
"""What an image without a single box (even at the low score floor) scores: as unsure as one box at the floor is
not (nothing to be unsure about) nor as one half-sure box (the model may be missing every object): half way."""


class Acquisition(StrEnum):
    """Uncertainty scorers over a model's predictions."""

    ENTROPY = "entropy"
    MARGIN = "margin"
    LEAST_CONFIDENCE = "least_confidence"


def _probs(probs: np.ndarray, what: str = "class probabilities") -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise AnnotationValidationError(what, expected="a 2-D array (N images, C classes)", actual=p.shape)
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1 + 1e-6).any():
        raise AnnotationValidationError(what, expected="finite values in 0..1", actual="values outside")
    return np.clip(p, 0.0, 1.0)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row of ``probs`` (N, C) divided by ``log C``: (N,) in 0..1 (1 = uniform)."""
    p = _probs(probs)
    if p.shape[1] == 1:
        return np.zeros(len(p))
    h = -(p * np.log(np.maximum(p, _EPS))).sum(axis=1)
    return np.clip(h / np.log(p.shape[1]), 0.0, 1.0)


def margin(probs: np.ndarray) -> np.ndarray:
    """``1 - (p1 - p2)`` of each row of ``probs`` (N, C), p1 >= p2 its two largest: (N,) in 0..1."""
    p = _probs(probs)
    if p.shape[1] == 1:
        return np.zeros(len(p))
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return np.clip(1.0 - (top2[:, 0] - top2[:, 1]), 0.0, 1.0)


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """``(1 - p1) * C / (C - 1)`` of each row of ``probs`` (N, C): (N,) in 0..1 (1 = uniform)."""
    p = _probs(probs)
    c = p.shape[1]
    if c == 1:
        return np.zeros(len(p))
    return np.clip((1.0 - p.max(axis=1)) * c / (c - 1), 0.0, 1.0)


_CLASSIFICATION = {Acquisition.ENTROPY: entropy, Acquisition.MARGIN: margin,
                   Acquisition.LEAST_CONFIDENCE: least_confidence}


def classification_scores(probs: np.ndarray, acquisition: Acquisition | str) -> np.ndarray:
    """The ``acquisition`` scorer over class probabilities (N, C): (N,) in 0..1."""
    try:
        fn = _CLASSIFICATION[Acquisition(acquisition)]
    except ValueError:
        raise AnnotationValidationError("acquisition", expected=" | ".join(a.value for a in Acquisition),
                                        actual=acquisition) from None
    return fn(probs)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli(p), elementwise: 1 at 0.5, 0 at 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    q = 1.0 - p
    return np.clip(-(p * np.log2(np.maximum(p, _EPS)) + q * np.log2(np.maximum(q, _EPS))), 0.0, 1.0)


def tag_entropy(probs: np.ndarray) -> np.ndarray:
    """Multi-label tagging: the binary entropy of each tag's probability, averaged over the tags (N, T) -> (N,)."""
    p = _probs(probs, "tag probabilities")
    return binary_entropy(p).mean(axis=1)


def box_uncertainty(scores: np.ndarray, *, kind: str = "entropy") -> np.ndarray:
    """Uncertainty of each box from its score in 0..1: ``entropy`` (binary entropy, bits) or ``distance``
    (``1 - |2s - 1|``, the distance from a sure answer). Both are 1 at 0.5 and 0 at 0 or 1."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if kind == "entropy":
        return binary_entropy(s)
    if kind == "distance":
        return 1.0 - np.abs(2.0 * np.clip(s, 0.0, 1.0) - 1.0)
    raise AnnotationValidationError("box uncertainty", expected="entropy | distance", actual=kind)


def aggregate_boxes(values: np.ndarray, *, how: str = "topk_mean", k: int = DEFAULT_TOP_K,
                    empty: float = EMPTY_IMAGE_SCORE) -> float:
    """One image's score from its boxes' uncertainties (B,): ``topk_mean`` (the mean of the ``k`` largest, or of all
    when fewer), ``max``, ``mean`` or ``sum`` (not bounded by 1: favours crowded images). ``empty`` when B = 0."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if how not in BOX_AGGREGATES:
        raise AnnotationValidationError("box aggregate", expected=" | ".join(BOX_AGGREGATES), actual=how)
    if k < 1:
        raise AnnotationValidationError("top k", expected="1 or more", actual=k)
    if len(v) == 0:
        return float(empty)
    if how == "max":
        return float(v.max())
    if how == "mean":
        return float(v.mean())
    if how == "sum":
        return float(v.sum())
    return float(np.sort(v)[::-1][:k].mean())


def detection_uncertainty(box_scores: Sequence[np.ndarray], *, kind: str = "entropy", how: str = "topk_mean",
                          k: int = DEFAULT_TOP_K, empty: float = EMPTY_IMAGE_SCORE) -> np.ndarray:
    """Per-image uncertainty of a detector: ``box_scores`` holds each image's box scores (B_i,) -> (N,).

    Default ``topk_mean`` with k = 3: ``max`` ranks an image by its single most doubtful box, which is often a
    background speck every image has; ``mean`` lets many sure boxes drown the doubtful ones (a crowded image of
    clear objects with two unsure ones looks sure); ``sum`` grows with the number of boxes. The mean of the few
    most doubtful boxes asks for images with several unsure objects, the ones whose labels change a detector most.
    Boxes should be predicted with a low score floor (e.g. 0.05), or the doubtful ones are never seen.
    """
    return np.asarray([aggregate_boxes(box_uncertainty(s, kind=kind), how=how, k=k, empty=empty)
                       for s in box_scores], dtype=np.float64)
