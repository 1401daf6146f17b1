"""Class-balanced epoch orders for skewed data (classification labels or tagging multi-hot rows)."""

from __future__ import annotations

import numpy as np

from visionloop.data.loader import derive_seed

__all__ = ["ClassBalancedOrder", "imbalance_ratio"]


def imbalance_ratio(targets: np.ndarray, num_classes: int) -> float:
    """Largest over smallest non-empty class count (1.0 = balanced). ``targets``: (N,) ints or (N, C) 0/1."""
    counts = _counts(targets, num_classes)
    nz = counts[counts > 0]
    return float(nz.max() / nz.min()) if nz.size else 1.0


def _counts(targets: np.ndarray, num_classes: int) -> np.ndarray:
    if targets.ndim == 1:
        return np.bincount(targets.astype(np.int64), minlength=num_classes).astype(np.float64)
    return targets.sum(axis=0).astype(np.float64)


class ClassBalancedOrder:
    """Draws ``num_samples`` indexes per epoch with replacement, image ``i`` with weight ``1 / count(class_i)**power``.

    ``power=1`` makes every class equally likely; ``0.5`` (square-root balancing) is a milder correction. For tagging
    an image weighs as its rarest positive tag; images without tags weigh as the rarest class too, so "none" is seen.
    The order of epoch ``e`` depends only on ``(seed, e)`` (see :mod:`visionloop.data.loader`).
    """

    def __init__(self, targets: np.ndarray, *, num_classes: int, seed: int, power: float = 1.0,
                 num_samples: int | None = None) -> None:
        targets = np.asarray(targets)
        counts = np.maximum(_counts(targets, num_classes), 1.0)
        inv = counts ** -power
        if targets.ndim == 1:
            w = inv[targets.astype(np.int64)]
        else:
            pos = targets > 0.5
            w = np.where(pos.any(axis=1), np.where(pos, inv[None, :], 0).max(axis=1), inv.max())
        self.p = w / w.sum()
        self.n = num_samples or len(targets)
        self.seed = seed

    def order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng(derive_seed(self.seed, epoch, 1))
        return rng.choice(len(self.p), size=self.n, replace=True, p=self.p)

    def expected_class_share(self, targets: np.ndarray, num_classes: int) -> np.ndarray:
        """Expected fraction of draws per class (for logs and tests)."""
        t = np.asarray(targets)
        onehot = np.eye(num_classes)[t.astype(np.int64)] if t.ndim == 1 else (t > 0.5).astype(np.float64)
        share = self.p @ onehot
        return share / share.sum()
