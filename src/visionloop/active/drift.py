"""Drift statistics: is recent production input still like the data the model was trained on? Pure numpy/scipy.

Four comparisons of a *reference* sample (the training set) with a *production* sample, each with a documented
threshold (:class:`DriftThresholds`):

* :func:`mmd_test`: maximum mean discrepancy of two sets of embeddings with a Gaussian (RBF) kernel whose bandwidth
  is the median pairwise distance of the pooled sample, and a permutation p-value (seeded; at most ``max_samples``
  vectors per side, so the cost is bounded whatever the window holds). Alert when p < 0.01.
* :func:`two_sample_test`: the model's confidences, Kolmogorov-Smirnov (``ks``, default) or Anderson-Darling
  (``ad``). Alert when p < 0.01.
* :func:`psi`: population stability index of the predicted-class histogram, with a floor for empty bins (half a
  count). Alert when PSI > 0.2 *and* a chi-square test of the two histograms gives p < 0.01: PSI is the size of
  the change (0.1-0.2 moderate, above 0.2 large, the usual reading), the test keeps the noise of a small window
  from raising it (two samples of the same distribution have an expected PSI of about (bins - 1) * (1/n + 1/m)).
* :func:`image_stats` and :func:`compare_values`: size (the side of a square of the same area, pixels), brightness
  (mean grey level, 0-255) and blur (variance of the Laplacian of the grey image, larger is sharper), compared by
  PSI over the reference's quantiles (deciles, fewer bins for small samples) and a KS test, with the same rule as
  the class histogram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from scipy import stats

from visionloop.core.imageio import decode, probe

__all__ = [
    "IMAGE_STATS",
    "DriftThresholds",
    "ImageStats",
    "MMDResult",
    "TestResult",
    "ValuesComparison",
    "class_counts_test",
    "compare_values",
    "histogram",
    "image_stats",
    "median_bandwidth",
    "prediction_summary",
    "mmd2_unbiased",
    "mmd_test",
    "psi",
    "two_sample_test",
]

IMAGE_STATS = ("size", "brightness", "blur")
"""The image statistics compared, in the order :class:`ImageStats` holds them."""
STATS_SIDE = 512
"""Images are reduced to at most this many pixels a side before brightness and blur are measured, so a large image
costs what a small one does and both samples are measured at the same scale."""
PSI_FLOOR = 1e-4
MAX_PERMUTATIONS = 10_000


@dataclass(frozen=True, kw_only=True)
class DriftThresholds:
    """When a statistic raises the alert (the defaults are the usual readings of each test)."""

    mmd_p: float = 0.01
    """Alert when the MMD permutation p-value is below this."""
    confidence_p: float = 0.01
    """Alert when the confidences' two-sample p-value is below this."""
    psi: float = 0.2
    """Alert when the predicted-class PSI is above this (and its chi-square p is below ``histogram_p``)."""
    image_psi: float = 0.2
    """Alert when an image statistic's PSI is above this (and its KS p is below ``histogram_p``)."""
    histogram_p: float = 0.01
    """The significance a PSI alert also needs, so a small window's noise raises none."""

    def to_json(self) -> dict[str, float]:
        return asdict(self)


# ---- maximum mean discrepancy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MMDResult:
    """``mmd``: the unbiased estimate of MMD² (can be slightly negative when the samples agree); ``p``: permutation
    p-value; ``bandwidth``: the kernel's sigma; ``n_x``/``n_y``: vectors used per side (after subsampling)."""

    mmd: float
    p: float
    bandwidth: float
    n_x: int
    n_y: int
    permutations: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _sq_distances(z: np.ndarray) -> np.ndarray:
    """(N, N) squared Euclidean distances of the rows of ``z`` (N, D), float64, never negative."""
    sq = np.einsum("ij,ij->i", z, z)
    d = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def median_bandwidth(sq_dist: np.ndarray) -> float:
    """The median heuristic: the median distance between distinct points (1.0 when all points coincide)."""
    n = len(sq_dist)
    off = sq_dist[~np.eye(n, dtype=bool)] if n > 1 else np.zeros(0)
    med = float(np.sqrt(np.median(off))) if off.size else 0.0
    return med if med > 0 else 1.0


def _mmd2_columns(k0: np.ndarray, in_x: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each column of ``in_x`` (N, P) bool (True: the point is in X), over the kernel matrix
    ``k0`` (N, N) whose diagonal is zero."""
    wx = in_x.astype(np.float64)
    wy = 1.0 - wx
    n, m = wx.sum(0), wy.sum(0)
    kx = k0 @ wx
    sxx = (wx * kx).sum(0)
    sxy = (wy * kx).sum(0)
    syy = (wy * (k0 @ wy)).sum(0)
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, *, bandwidth: float | None = None) -> float:
    """Unbiased MMD² of samples ``x`` (N, D) and ``y`` (M, D) with an RBF kernel of width ``bandwidth`` (default:
    the median heuristic over the pooled sample). N and M must be at least 2."""
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    d = _sq_distances(np.concatenate([x, y]))
    sigma = bandwidth or median_bandwidth(d)
    k0 = np.exp(-d / (2.0 * sigma * sigma))
    np.fill_diagonal(k0, 0.0)
    in_x = np.zeros((len(d), 1), bool)
    in_x[: len(x)] = True
    return float(_mmd2_columns(k0, in_x)[0])


def _as_matrix(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise ValueError(f"{name} must be (N, D) with N >= 2, got shape {a.shape}")
    return a


def _subsample(a: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return a if len(a) <= n else a[np.sort(rng.choice(len(a), n, replace=False))]


def mmd_test(x: np.ndarray, y: np.ndarray, *, permutations: int = 500, max_samples: int = 500, seed: int = 0,
             chunk: int = 100) -> MMDResult:
    """Permutation test of "``x`` (N, D) and ``y`` (M, D) come from one distribution" by unbiased MMD² (RBF kernel,
    median-heuristic bandwidth). Each side is subsampled to ``max_samples`` rows (seeded); the p-value is
    (1 + permuted statistics >= the observed one) / (1 + ``permutations``). Deterministic for a given ``seed``.
    Costs O((N + M)² D) for the kernel and O((N + M)² permutations) for the test, ``chunk`` permutations at a time."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (N, D) and (M, D) with the same D, got {x.shape} and {y.shape}")
    if not 1 <= permutations <= MAX_PERMUTATIONS:
        raise ValueError(f"permutations must be 1..{MAX_PERMUTATIONS}, got {permutations}")
    rng = np.random.default_rng(seed)
    x = _as_matrix(_subsample(np.asarray(x), max_samples, rng), "x")
    y = _as_matrix(_subsample(np.asarray(y), max_samples, rng), "y")
    n, total = len(x), len(x) + len(y)
    d = _sq_distances(np.concatenate([x, y]))
    sigma = median_bandwidth(d)
    k0 = np.exp(-d / (2.0 * sigma * sigma))
    np.fill_diagonal(k0, 0.0)
    observed_mask = np.zeros((total, 1), bool)
    observed_mask[:n] = True
    observed = float(_mmd2_columns(k0, observed_mask)[0])
    exceed = 0
    for start in range(0, permutations, chunk):
        p = min(chunk, permutations - start)
        masks = np.zeros((total, p), bool)
        for j in range(p):
            masks[rng.permutation(total)[:n], j] = True
        exceed += int((_mmd2_columns(k0, masks) >= observed - 1e-12).sum())
    return MMDResult(mmd=observed, p=(1 + exceed) / (1 + permutations), bandwidth=sigma, n_x=n, n_y=len(y),
                     permutations=permutations)


# ---- confidences, histograms -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    """A two-sample test: its statistic and p-value."""

    method: str
    stat: float
    p: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def two_sample_test(reference: Sequence[float] | np.ndarray, production: Sequence[float] | np.ndarray, *,
                    method: str = "ks") -> TestResult:
    """Kolmogorov-Smirnov (``ks``: statistic = the largest gap of the two empirical CDFs) or k-sample
    Anderson-Darling (``ad``: more weight in the tails; p-value from 999 seeded permutations) of two samples of
    scalars (confidences in 0..1, image statistics). Each needs at least 2 values."""
    a, b = np.asarray(reference, np.float64).ravel(), np.asarray(production, np.float64).ravel()
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a two-sample test needs at least 2 values a side, got {len(a)} and {len(b)}")
    if method == "ks":
        r = stats.ks_2samp(a, b)
        return TestResult("ks", float(r.statistic), float(r.pvalue))
    if method == "ad":
        r = stats.anderson_ksamp([a, b], variant="midrank", method=stats.PermutationMethod(
            n_resamples=999, random_state=np.random.default_rng(0)))
        return TestResult("ad", float(r.statistic), float(r.pvalue))
    raise ValueError(f"unknown two-sample test {method!r}; use 'ks' or 'ad'")


def psi(reference_counts: Sequence[float] | np.ndarray, production_counts: Sequence[float] | np.ndarray, *,
        floor: float | None = PSI_FLOOR) -> float:
    """Population stability index of two histograms over the same bins: sum((q - p) * ln(q / p)) of their
    proportions, each proportion at least ``floor`` (an empty bin would make it infinite); ``floor=None``: half a
    count of each histogram's own total (an empty bin of a small sample then weighs what it is worth, where 1e-4
    made one empty bin of 6 worth a PSI of 1.2 on 30 BCCD images). Bins empty in both are left out. 0 when they
    agree."""
    p, q = np.asarray(reference_counts, np.float64), np.asarray(production_counts, np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"two histograms over the same bins are needed, got shapes {p.shape} and {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("a histogram is empty: nothing to compare")
    both = (p + q) > 0  # a bin empty on both sides says nothing
    p, q = p[both], q[both]
    p = np.maximum(p / p.sum(), 0.5 / p.sum() if floor is None else floor)
    q = np.maximum(q / q.sum(), 0.5 / q.sum() if floor is None else floor)
    return float(np.sum((q - p) * np.log(q / p)))


def class_counts_test(reference_counts: Sequence[float] | np.ndarray,
                      production_counts: Sequence[float] | np.ndarray) -> TestResult:
    """Chi-square test of homogeneity of two class histograms (bins empty on both sides left out); p = 1 when fewer
    than two bins hold anything."""
    table = np.asarray([reference_counts, production_counts], np.float64)
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2 or (table.sum(1) <= 0).any():
        return TestResult("chi2", 0.0, 1.0)
    r = stats.chi2_contingency(table, correction=False)
    return TestResult("chi2", float(r.statistic), float(r.pvalue))


def prediction_summary(prediction: dict[str, Any]) -> tuple[float | None, list[int]]:
    """(confidence, predicted class ids) of one prediction JSON (``Prediction.to_json()``, as a model server answers
    it): classification: the top score and its class; tagging: the highest score, and the tags; detection and
    instance segmentation: the mean score of the detections, and each detection's class (None and [] for an image
    with none); semantic segmentation: the mean of the segments' scores, and their classes. One confidence per image
    keeps the samples of the two-sample test independent (the boxes of one image are not)."""
    if prediction.get("label"):
        return float(prediction["label"]["score"]), [int(prediction["label"]["class_id"])]
    if "tags" in prediction:
        scores = [float(s["score"]) for s in prediction.get("scores") or []]
        return (max(scores) if scores else None), [int(t["class_id"]) for t in prediction["tags"]]
    parts = prediction.get("detections", prediction.get("segments")) or []
    if not parts:
        return None, []
    return float(np.mean([float(d["score"]) for d in parts])), [int(d["class_id"]) for d in parts]


# ---- image statistics ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageStats:
    """``size``: sqrt(width x height) in pixels; ``brightness``: mean grey level 0-255; ``blur``: variance of the
    4-neighbour Laplacian of the grey image reduced to :data:`STATS_SIDE` a side (low: blurred)."""

    size: float
    brightness: float
    blur: float
    width: int
    height: int

    def values(self) -> tuple[float, float, float]:
        return self.size, self.brightness, self.blur


def image_stats(data: bytes, *, max_pixels: int = 100_000_000) -> ImageStats:
    """Size, brightness and blur of an encoded image (raises :class:`ImageError` for one that cannot be read)."""
    info = probe(data, max_pixels=max_pixels)  # the image's own size: a JPEG decoded with a draft is smaller
    im = decode(data, max_pixels=max_pixels, draft=(STATS_SIDE, STATS_SIDE))
    width, height = info.width, info.height
    grey = im.convert("L")
    if max(grey.size) > STATS_SIDE:
        grey.thumbnail((STATS_SIDE, STATS_SIDE), Image.Resampling.BILINEAR)
    g = np.asarray(grey, np.float32)
    if min(g.shape) < 3:
        lap_var = 0.0
    else:
        lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
        lap_var = float(lap.var())
    return ImageStats(size=math.sqrt(width * height), brightness=float(g.mean()), blur=lap_var, width=width,
                      height=height)


@dataclass(frozen=True)
class ValuesComparison:
    """One scalar statistic, reference vs production: KS test, PSI over the reference's deciles, and histograms for
    people (``edges``: equal-width bins over both samples; ``reference`` / ``production``: fractions per bin)."""

    ks: float
    p: float
    psi: float
    n_reference: int
    n_production: int
    reference_mean: float
    production_mean: float
    edges: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    production: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins of ``edges`` (the first and last bins also take what lies beyond them)."""
    inner = edges[1:-1]
    return np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(edges) - 1).astype(np.float64)


def _quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Edges of the reference's quantile bins; when the reference holds (nearly) one value (BCCD: every image
    640x480), a bin for it and one on either side, so a change still shows."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        lo, hi = float(edges[0]), float(edges[-1])
        pad = max(0.5, abs(hi) * 1e-6)
        edges = np.asarray([lo - 2 * pad, lo - pad, hi + pad, hi + 2 * pad])
    return edges


def compare_values(reference: Sequence[float] | np.ndarray, production: Sequence[float] | np.ndarray, *,
                   bins: int = 10, display_bins: int = 20) -> ValuesComparison:
    """Compare two samples of one scalar statistic (see :class:`ValuesComparison`); each needs 2 values or more.
    The PSI uses at most ``bins`` quantile bins of the reference, fewer for small samples (about 5 values of the
    smaller sample per bin), so that empty bins of a small window do not inflate it."""
    a, b = np.asarray(reference, np.float64).ravel(), np.asarray(production, np.float64).ravel()
    test = two_sample_test(a, b)
    q_edges = _quantile_edges(a, max(2, min(bins, min(len(a), len(b)) // 5)))
    value = psi(histogram(a, q_edges), histogram(b, q_edges), floor=None)
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, display_bins + 1)
    return ValuesComparison(
        ks=test.stat, p=test.p, psi=value, n_reference=len(a), n_production=len(b),
        reference_mean=float(a.mean()), production_mean=float(b.mean()), edges=[float(e) for e in edges],
        reference=[float(c) for c in histogram(a, edges) / len(a)],
        production=[float(c) for c in histogram(b, edges) / len(b)])
