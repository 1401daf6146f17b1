"""Diversity over embeddings: a batch to label should cover the data, not be 50 near-copies of one hard image.

* :func:`kcenter_greedy` (the core-set step of Sener & Savarese, 2018): pick, again and again, the point farthest
  from everything picked so far (and from the already labelled points), so near-copies are picked once.
* :func:`diverse_top` is the usual recipe on top of an acquisition function: keep the ``factor`` x n most uncertain
  candidates (5-10x), then k-center greedy among them, started at the most uncertain one.
* :func:`cluster_top` is the clustering recipe (Zhdanov, 2019, "Diverse mini-batch Active Learning"): KMeans the
  ``factor`` x n most uncertain candidates into n clusters, weighted by uncertainty, and take the candidate nearest
  each centre. K-center greedy favours the far-out points (odd images); the centres of uncertain clusters are
  uncertain *and* representative, which measured better on real data (``benchmarks/active_learning.py``).
* :func:`typiclust` is the cold start (Hacohen et al., 2022, "TypiClust"): with no model yet, the first labels
  should be typical, not odd: KMeans into clusters (the clusters that hold a labelled point are covered), then the
  most typical point of each uncovered cluster, largest clusters first; typicality is the inverse of the mean
  distance to the point's k nearest neighbours in its cluster.

Distances are Euclidean on the given vectors; with L2-normalised embeddings (as stored) that is a monotone function of
the cosine. Pure numpy and scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visionloop.core.errors import AnnotationValidationError

__all__ = ["CLUSTER_CANDIDATE_FACTOR", "DEFAULT_CANDIDATE_FACTOR", "TYPICALITY_NEIGHBOURS", "ClusterPick",
           "KCenterPick", "TypicalPick", "cluster_top", "diverse_top", "kcenter_greedy", "typicality", "typiclust"]

DEFAULT_CANDIDATE_FACTOR = 5
""":func:`diverse_top` keeps this many times n of the most uncertain candidates before k-center greedy."""
CLUSTER_CANDIDATE_FACTOR = 10
""":func:`cluster_top` clusters this many times n of the most uncertain candidates (Zhdanov's choice)."""
TYPICALITY_NEIGHBOURS = 20
"""Neighbours the typicality of a point averages over (TypiClust's choice), fewer in small clusters."""
_BLOCK = 4096


def _matrix(x: np.ndarray, what: str = "embeddings") -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise AnnotationValidationError(what, expected="a 2-D array (N, D)", actual=a.shape)
    if not np.isfinite(a).all():
        raise AnnotationValidationError(what, expected="finite values", actual="NaN or infinity")
    return a


def _min_sq_dist(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared distance of each row of ``x`` (N, D) to its nearest row of ``centers`` (M, D), a block at a time."""
    out = np.full(len(x), np.inf, dtype=np.float64)
    if len(centers) == 0:
        return out
    xx = (x.astype(np.float64) ** 2).sum(1)
    for i in range(0, len(centers), _BLOCK):
        c = centers[i:i + _BLOCK].astype(np.float64)
        d = xx[:, None] - 2.0 * (x @ c.T) + (c ** 2).sum(1)[None, :]
        out = np.minimum(out, d.min(axis=1))
    return np.maximum(out, 0.0)


@dataclass(frozen=True)
class KCenterPick:
    """A point chosen by k-center greedy: its ``index`` and its ``distance`` to the nearest point chosen before it
    or labelled (inf for the first pick with nothing labelled)."""

    index: int
    distance: float


def kcenter_greedy(x: np.ndarray, n: int, *, labelled: np.ndarray | None = None, first: int | None = None,
                   ) -> list[KCenterPick]:
    """Choose ``n`` rows of ``x`` (N, D), each the farthest from the rows chosen before and from ``labelled``
    (M, D). ``first``: the row to start with (None: the farthest from ``labelled``, or from the mean when nothing
    is labelled). At most N picks; in pick order."""
    pts = _matrix(x)
    n = min(int(n), len(pts))
    if n <= 0:
        return []
    lab = _matrix(labelled, "labelled embeddings") if labelled is not None and len(labelled) else None
    if lab is not None and lab.shape[1] != pts.shape[1]:
        raise AnnotationValidationError("labelled embeddings", expected=f"{pts.shape[1]} dimensions",
                                        actual=lab.shape[1])
    dist = _min_sq_dist(pts, lab) if lab is not None else np.full(len(pts), np.inf)
    picks: list[KCenterPick] = []
    chosen = np.zeros(len(pts), bool)
    for step in range(n):
        if step == 0 and first is not None:
            i = int(first)
        elif step == 0 and lab is None:
            i = int(np.argmax(((pts - pts.mean(0)) ** 2).sum(1)))
        else:
            i = int(np.argmax(np.where(chosen, -1.0, dist)))
        picks.append(KCenterPick(index=i, distance=float(np.sqrt(dist[i]))))
        chosen[i] = True
        dist = np.minimum(dist, _min_sq_dist(pts, pts[i:i + 1]))
    return picks


def _candidates(scores: np.ndarray, x: np.ndarray, n: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores as floats, embeddings checked, positions of the ``factor`` x n highest scores, highest first)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    pts = _matrix(x)
    if len(s) != len(pts):
        raise AnnotationValidationError("scores", expected=f"{len(pts)} values, one per embedding", actual=len(s))
    if factor < 1:
        raise AnnotationValidationError("candidate factor", expected="1 or more", actual=factor)
    return s, pts, np.argsort(-s, kind="stable")[: max(0, int(n)) * int(factor)]


def diverse_top(scores: np.ndarray, x: np.ndarray, n: int, *, factor: int = DEFAULT_CANDIDATE_FACTOR,
                labelled: np.ndarray | None = None) -> list[KCenterPick]:
    """``n`` rows that are uncertain and unlike each other: the ``factor`` x n highest ``scores`` (N,) become the
    candidates, k-center greedy over their embeddings ``x`` (N, D) picks n of them, starting from the most
    uncertain. Returned indices are rows of ``x``."""
    s, pts, order = _candidates(scores, x, n, factor)
    picks = kcenter_greedy(pts[order], n, labelled=labelled, first=0)
    return [KCenterPick(index=int(order[p.index]), distance=p.distance) for p in picks]


@dataclass(frozen=True)
class ClusterPick:
    """A point chosen by :func:`cluster_top`: its ``index``, the ``size`` of its cluster (candidates) and its
    ``distance`` to the cluster's centre."""

    index: int
    size: int
    distance: float


def cluster_top(scores: np.ndarray, x: np.ndarray, n: int, *, factor: int = CLUSTER_CANDIDATE_FACTOR,
                seed: int = 0) -> list[ClusterPick]:
    """``n`` rows that are uncertain and representative: the ``factor`` x n highest ``scores`` (N,) become the
    candidates, KMeans (scikit-learn, seeded) splits their embeddings ``x`` (N, D) into n clusters, each candidate
    weighted by its score (uncertainty, 0 or more), and the candidate nearest each centre is picked; clusters with
    the most weight come first. Fewer than n distinct clusters (duplicates) are filled with the next most uncertain
    candidates. Returned indices are rows of ``x``."""
    from sklearn.cluster import KMeans

    n = min(max(0, int(n)), len(x))
    s, pts, order = _candidates(scores, x, n, factor)
    if n == 0:
        return []
    if len(order) <= n:
        return [ClusterPick(index=int(i), size=1, distance=0.0) for i in order]
    cand, weight = pts[order].astype(np.float64), np.maximum(s[order], 0.0) + 1e-6
    km = KMeans(n_clusters=n, n_init=1, random_state=seed).fit(cand, sample_weight=weight)
    picks: list[tuple[float, ClusterPick]] = []
    for c in range(n):
        members = np.flatnonzero(km.labels_ == c)
        if len(members) == 0:
            continue
        d = ((cand[members] - km.cluster_centers_[c]) ** 2).sum(1)
        j = members[int(np.argmin(d))]
        picks.append((float(weight[members].sum()), ClusterPick(index=int(order[j]), size=len(members),
                                                                  distance=float(np.sqrt(d.min())))))
    chosen = [p for _, p in sorted(picks, key=lambda wp: -wp[0])]
    taken = {p.index for p in chosen}
    chosen += [ClusterPick(index=int(i), size=1, distance=0.0) for i in order if int(i) not in taken][: n - len(chosen)]
    return chosen


def typicality(x: np.ndarray, *, k: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """Inverse mean Euclidean distance of each row of ``x`` (N, D) to its ``k`` nearest other rows (fewer when
    N - 1 < k); a lone point scores 0."""
    pts = _matrix(x)
    n = len(pts)
    kk = min(int(k), n - 1)
    if kk < 1:
        return np.zeros(n)
    out = np.empty(n)
    xx = (pts.astype(np.float64) ** 2).sum(1)
    for i in range(0, n, _BLOCK):
        q = pts[i:i + _BLOCK].astype(np.float64)
        d = np.maximum(xx[i:i + _BLOCK, None] - 2.0 * (q @ pts.T) + xx[None, :], 0.0)
        d[np.arange(len(q)), np.arange(i, i + len(q))] = np.inf  # not itself
        near = np.sqrt(np.partition(d, kk - 1, axis=1)[:, :kk])
        out[i:i + len(q)] = 1.0 / (near.mean(axis=1) + 1e-12)
    return out


@dataclass(frozen=True)
class TypicalPick:
    """A point chosen by TypiClust: its ``index``, its ``cluster`` and that cluster's ``size``, its ``typicality``."""

    index: int
    cluster: int
    size: int
    typicality: float


def typiclust(x: np.ndarray, n: int, *, labelled: np.ndarray | None = None, seed: int = 0,
              k: int = TYPICALITY_NEIGHBOURS, max_clusters: int = 500) -> list[TypicalPick]:
    """Cold start: ``n`` typical rows of ``x`` (N, D) from distinct clusters.

    KMeans (scikit-learn, seeded) into ``min(n + M, max_clusters, N)`` clusters over ``x`` and the ``labelled`` rows
    (M, D); clusters holding a labelled row are covered. From each uncovered cluster, largest first, the most typical
    row is picked; when n exceeds the uncovered clusters, further rounds take the next most typical rows, largest
    clusters first. At most N picks, in pick order.
    """
    from sklearn.cluster import KMeans

    pts = _matrix(x)
    n = min(int(n), len(pts))
    if n <= 0:
        return []
    lab = _matrix(labelled, "labelled embeddings") if labelled is not None and len(labelled) else np.zeros(
        (0, pts.shape[1]), np.float32)
    both = np.concatenate([pts, lab]) if len(lab) else pts
    n_clusters = max(1, min(n + len(lab), int(max_clusters), len(both)))
    km = KMeans(n_clusters=n_clusters, n_init=1, random_state=seed).fit(both)
    assign = km.labels_[: len(pts)]
    covered = set(km.labels_[len(pts):].tolist())
    sizes = np.bincount(assign, minlength=n_clusters)
    ranked: dict[int, list[tuple[int, float]]] = {}
    for c in range(n_clusters):
        members = np.flatnonzero(assign == c)
        if len(members) == 0:
            continue
        t = typicality(pts[members], k=k)
        order = np.argsort(-t, kind="stable")
        ranked[c] = [(int(members[j]), float(t[j])) for j in order]
    by_size = sorted(ranked, key=lambda c: (c in covered, -sizes[c], c))
    picks: list[TypicalPick] = []
    depth = 0
    while len(picks) < n:
        for c in by_size:
            if depth < len(ranked[c]) and len(picks) < n:
                i, t = ranked[c][depth]
                picks.append(TypicalPick(index=i, cluster=int(c), size=int(sizes[c]), typicality=t))
        depth += 1
    return picks
