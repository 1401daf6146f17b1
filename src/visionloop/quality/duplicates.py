"""Duplicates and outliers of a collection of images, from their hashes and their embeddings.

* :func:`exact_duplicate_groups`: images with the same bytes (sha256). A project stores a still image once per
  content, so these are video frames repeated, or images a caller lists from several projects or sources.
* :func:`near_duplicate_groups`: images whose embeddings have a cosine similarity of at least ``threshold`` (found
  among each image's nearest neighbours in a :class:`~visionloop.quality.similarity.SimilarityIndex`) and, when a
  ``verify`` function is given, whose layouts agree (:func:`layout_similarity` >= ``verify_threshold``), joined into
  groups (connected components of the graph of such pairs, by scipy): a re-encoded, resized, slightly cropped or
  brightened copy, or a burst of nearly identical shots.
* :func:`outliers`: images that look unlike the rest, ranked by the mean cosine distance to their ``k`` nearest
  neighbours (the k-NN distance outlier score; an isolated image is far even from its nearest ones).

Why two tests: pooled ImageNet features say what an image shows, not where. On BCCD (364 blood smears, default
backbone) distinct smears have a median nearest-neighbour cosine of 0.92 (99th percentile 0.95) while a copy cropped
by 3% per side scores 0.94 against its original: no cosine threshold separates them. The layout check (normalised
cross-correlation of 32x32 grey thumbnails, best over shifts of up to 4 px) scores such copies >= 0.86 and distinct
smears' nearest neighbours 0.29 (median; 99th percentile 0.66). So :data:`NEAR_DUPLICATE_THRESHOLD` (0.90) only
proposes candidates and :data:`LAYOUT_THRESHOLD` (0.80) decides (see ``tests/quality/test_duplicates.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from visionloop.core.errors import AnnotationValidationError, ImageError, NotFoundError
from visionloop.core.imageio import decode
from visionloop.quality.similarity import SimilarityIndex, stored_index
from visionloop.storage.embeddings import EmbeddingSet, image_shas

__all__ = ["LAYOUT_THRESHOLD", "NEAR_DUPLICATE_THRESHOLD", "DuplicateGroup", "Outlier", "exact_duplicate_groups",
           "layout_similarity", "layout_thumbnail", "near_duplicate_groups", "outliers", "project_duplicates", "project_layout_verifier"]

NEAR_DUPLICATE_THRESHOLD = 0.90
LAYOUT_THRESHOLD = 0.80
LAYOUT_SIDE = 32
LAYOUT_SHIFT = 4


@dataclass(frozen=True)
class DuplicateGroup:
    """Ids of images that duplicate each other, and the cosine similarities of the pairs that joined them
    (``min_score`` / ``max_score``; 1.0 for exact duplicates)."""

    ids: list[int]
    min_score: float = 1.0
    max_score: float = 1.0
    pairs: list[tuple[int, int, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"ids": self.ids, "size": len(self.ids), "min_score": round(self.min_score, 4),
                "max_score": round(self.max_score, 4)}


@dataclass(frozen=True)
class Outlier:
    id: int
    score: float
    """Mean cosine distance (1 - cosine) to the k nearest other images: larger is more unusual."""
    neighbours: list[int]

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "score": round(self.score, 4), "neighbours": self.neighbours}


def exact_duplicate_groups(items: Iterable[tuple[int, str]]) -> list[DuplicateGroup]:
    """Groups (two or more ids) of ``(id, sha256)`` items sharing a hash; largest first, then by first id."""
    by_sha: dict[str, list[int]] = {}
    for i, sha in items:
        by_sha.setdefault(sha, []).append(int(i))
    groups = [DuplicateGroup(sorted(ids)) for ids in by_sha.values() if len(ids) > 1]
    return sorted(groups, key=lambda g: (-len(g.ids), g.ids[0]))


def layout_thumbnail(im: Image.Image) -> np.ndarray:
    """(32, 32) float32 grey thumbnail (box-filtered) of an image, for :func:`layout_similarity`."""
    return np.asarray(im.convert("L").resize((LAYOUT_SIDE, LAYOUT_SIDE), Image.BOX), np.float32)


def layout_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How well two :func:`layout_thumbnail` s agree: the best normalised cross-correlation of one's centre within
    the other over shifts of up to 4 px (12% of the side), both ways; 1 for the same picture at any brightness."""
    m = LAYOUT_SHIFT
    r1 = cv2.matchTemplate(b, a[m:-m, m:-m], cv2.TM_CCOEFF_NORMED).max()
    r2 = cv2.matchTemplate(a, b[m:-m, m:-m], cv2.TM_CCOEFF_NORMED).max()
    return float(max(r1, r2))


def near_duplicate_groups(index: SimilarityIndex, *, threshold: float = NEAR_DUPLICATE_THRESHOLD, k: int = 20,
                          verify: Callable[[int, int], float] | None = None,
                          verify_threshold: float = LAYOUT_THRESHOLD) -> list[DuplicateGroup]:
    """Groups of ids whose vectors are joined by cosine >= ``threshold``, searching each row's ``k`` nearest
    neighbours (a group larger than k still forms through chains); largest group first.

    ``verify(id_a, id_b)``, when given, must also reach ``verify_threshold`` for a pair to join (e.g.
    :func:`layout_similarity` of the two images' thumbnails); it is called once per candidate pair."""
    if not -1.0 <= threshold <= 1.0:
        raise AnnotationValidationError("threshold", expected="a cosine similarity in -1..1", actual=threshold)
    n = len(index)
    if n < 2:
        return []
    pos, scores = index.neighbours(min(k, n - 1))
    rows, cols = np.nonzero((scores >= threshold) & (pos >= 0))
    a, b, s = rows, pos[rows, cols], scores[rows, cols]
    if verify is not None and len(a):
        ids = index.ids
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        pairs, inverse = np.unique(np.stack([lo, hi], 1), axis=0, return_inverse=True)
        ok = np.array([verify(int(ids[x]), int(ids[y])) >= verify_threshold for x, y in pairs], bool)
        keep = ok[inverse.reshape(-1)]
        a, b, s = a[keep], b[keep], s[keep]
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((-s, hi, lo))  # each pair once (the higher of its two scores), grouped below
    lo, hi, s = lo[order], hi[order], s[order]
    first = np.ones(len(lo), bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, s = lo[first], hi[first], s[first]
    edge_comp = label[lo]
    by_comp = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_comp[by_comp])) + 1
    member_order = np.argsort(label, kind="stable")
    member_bounds = np.searchsorted(label[member_order], np.arange(label.max() + 2))
    ids = index.ids
    groups: list[DuplicateGroup] = []
    for part in np.split(by_comp, bounds) if len(by_comp) else []:
        comp = int(edge_comp[part[0]])
        members = member_order[member_bounds[comp]:member_bounds[comp + 1]]
        pairs = sorted(((int(ids[x]), int(ids[y]), float(v)) for x, y, v in zip(lo[part], hi[part], s[part],
                                                                                 strict=True)), key=lambda t: -t[2])
        groups.append(DuplicateGroup(sorted(int(ids[m]) for m in members), min_score=float(s[part].min()),
                                     max_score=float(s[part].max()), pairs=pairs))
    return sorted(groups, key=lambda g: (-len(g.ids), -g.max_score, g.ids[0]))


def outliers(index: SimilarityIndex, *, n: int = 20, k: int = 10) -> list[Outlier]:
    """The ``n`` rows least like the rest: highest mean cosine distance to their ``k`` nearest other rows."""
    if n < 1 or k < 1:
        raise AnnotationValidationError("n and k", expected="at least 1", actual=(n, k))
    total = len(index)
    if total < 2:
        return []
    pos, scores = index.neighbours(min(k, total - 1))
    valid = pos >= 0
    dist = np.where(valid, 1.0 - scores, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    top = np.argsort(-dist, kind="stable")[:n]
    return [Outlier(int(index.ids[i]), float(dist[i]), [int(index.ids[p]) for p in pos[i] if p >= 0]) for i in top]


def project_layout_verifier(project: Any) -> Callable[[int, int], float]:
    """``verify(id_a, id_b)`` for :func:`near_duplicate_groups`: :func:`layout_similarity` of two images of a
    project, each decoded once (JPEG at a reduced scale) and kept as a thumbnail; an image that cannot be read
    scores 0 (never grouped)."""
    thumbs: dict[int, np.ndarray | None] = {}

    def thumb(image_id: int) -> np.ndarray | None:
        if image_id not in thumbs:
            try:
                sha = project.image(image_id).sha256
                im = decode(project.blobs.source(sha), max_pixels=project.settings.max_image_pixels,
                            draft=(4 * LAYOUT_SIDE, 4 * LAYOUT_SIDE))
                thumbs[image_id] = layout_thumbnail(im)
            except (ImageError, NotFoundError, FileNotFoundError):
                thumbs[image_id] = None
        return thumbs[image_id]

    def verify(a: int, b: int) -> float:
        ta, tb = thumb(a), thumb(b)
        return 0.0 if ta is None or tb is None else layout_similarity(ta, tb)

    return verify


def project_duplicates(project: Any, key: str, *, threshold: float = NEAR_DUPLICATE_THRESHOLD,
                       layout_threshold: float = LAYOUT_THRESHOLD) -> dict[str, Any]:
    """A project's ``exact`` groups (same sha256) and ``near`` groups (stored image embeddings of backbone ``key``,
    checked by layout unless ``layout_threshold`` is 0), each with its images' ids and names."""
    index, _ = stored_index(EmbeddingSet(project.root, key, "images"))
    exact = exact_duplicate_groups(image_shas(project))
    verify = project_layout_verifier(project) if layout_threshold > 0 else None
    near = near_duplicate_groups(index, threshold=threshold, verify=verify, verify_threshold=layout_threshold)
    wanted = sorted({i for g in exact + near for i in g.ids})
    names = {im.id: im.name for im in project.images(ids=wanted)} if wanted else {}

    def public(g: DuplicateGroup) -> dict[str, Any]:
        return {**g.to_json(), "images": [{"id": i, "name": names.get(i, "")} for i in g.ids]}

    return {"backbone": key, "threshold": threshold, "layout_threshold": layout_threshold,
            "exact": [public(g) for g in exact], "near": [public(g) for g in near]}

