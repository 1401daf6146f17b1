"""Expected calibration error and reliability bins."""

from __future__ import annotations

import numpy as np

__all__ = ["expected_calibration_error", "reliability_bins"]


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15) -> list[dict[str, float]]:
    """Equal-width confidence bins: ``{"lo", "hi", "count", "confidence", "accuracy"}`` (means inside the bin)."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        n = int(m.sum())
        out.append({"lo": float(lo), "hi": float(hi), "count": n,
                    "confidence": float(confidence[m].mean()) if n else 0.0,
                    "accuracy": float(correct[m].mean()) if n else 0.0})
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15) -> float:
    """ECE = sum over bins of (bin size / N) * |accuracy - mean confidence|; 0 is perfectly calibrated.

    Classification: ``confidence`` = top-1 probability, ``correct`` = top-1 is right. Tagging: every (image, class)
    score with ``correct`` = the tag is present.
    """
    n = len(confidence)
    if n == 0:
        return 0.0
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(
        confidence, correct, bins=bins)))
