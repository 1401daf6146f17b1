"""Nearest neighbours by cosine similarity over L2-normalised vectors, with one interface for every size.

:class:`SimilarityIndex` searches exactly with numpy (matrix products over blocks of the vectors, so memory stays
bounded for a memory-mapped array of any size) while the collection is small, and with FAISS when it is larger than
``exact_below`` rows: an inverted-file index (``IndexIVFFlat``, inner product; builds in seconds, the default) or a
graph (``IndexHNSWFlat``, inner product; slower to build). On unit vectors the inner product is the cosine. Scores
are cosines in [-1, 1]; results are ordered best first. Measured speed and recall against the exact search are in
``benchmarks/similarity.py`` (``benchmarks/results/similarity.json``).

A FAISS index can be kept on disk beside the vectors (:func:`cached_index`) so a command line does not rebuild it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from visionloop.core.errors import AnnotationValidationError
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet, EmbeddingsMissingError

__all__ = ["EXACT_BELOW", "MAX_K", "Method", "SimilarityIndex", "cached_index", "exact_search", "normalize",
           "similar_images", "stored_index"]

Method = Literal["auto", "exact", "ivf", "hnsw"]
EXACT_BELOW = 50_000
"""Collections smaller than this are searched exactly (tens of milliseconds a query at 1280 dimensions)."""
MAX_K = 1000
_BLOCK = 32768
_QUERY_BLOCK = 256


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero), float32."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32, copy=False)


def _blocks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions (Q, k) int64, scores (Q, k) float32) of the ``k`` largest inner products, best first.

    ``vectors`` (N, D) may be memory-mapped: it is read ``_BLOCK`` rows at a time, and queries ``_QUERY_BLOCK`` at a
    time, so at most about ``_QUERY_BLOCK * (_BLOCK + k)`` scores are held. Missing neighbours (k > N) are -1.
    """
    q = np.asarray(queries, np.float32)
    n, nq = len(vectors), len(q)
    kk = min(k, n)
    pos_out = np.full((nq, k), -1, np.int64)
    score_out = np.full((nq, k), -np.inf, np.float32)
    if kk == 0 or nq == 0:
        return pos_out, score_out
    for qs in _blocks(nq, _QUERY_BLOCK):
        best_s = np.full((qs.stop - qs.start, 0), -np.inf, np.float32)
        best_p = np.zeros((qs.stop - qs.start, 0), np.int64)
        for vs in _blocks(n, _BLOCK):
            s = q[qs] @ np.asarray(vectors[vs], np.float32).T
            cand_s = np.concatenate([best_s, s], axis=1)
            cand_p = np.concatenate([best_p, np.broadcast_to(np.arange(vs.start, vs.stop), s.shape)], axis=1)
            if cand_s.shape[1] > kk:
                top = np.argpartition(-cand_s, kk - 1, axis=1)[:, :kk]
                cand_s, cand_p = np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_p, top, 1)
            best_s, best_p = cand_s, cand_p
        order = np.argsort(-best_s, axis=1, kind="stable")
        score_out[qs, :kk] = np.take_along_axis(best_s, order, 1)
        pos_out[qs, :kk] = np.take_along_axis(best_p, order, 1)
    return pos_out, score_out


class SimilarityIndex:
    """Cosine k-nearest-neighbour search over ``vectors`` (N, D), returning the ``ids`` of the hits.

    ``method``: ``auto`` (exact below ``exact_below`` rows, else ``ivf``), ``exact``, ``ivf`` or ``hnsw``. ``ids``
    (N,) int64 defaults to the row positions. FAISS settings: ``nlist`` (IVF cells; default about 4 sqrt(N)),
    ``nprobe`` (cells visited per query; default nlist / 16, at least 16), ``hnsw_m`` (graph degree) and
    ``ef_search`` (HNSW candidate list; default max(64, 4 k)). The vectors should be L2-normalised (see
    :func:`normalize`); they are not copied for exact search (a memory map stays one).
    """

    def __init__(self, vectors: np.ndarray, ids: np.ndarray | None = None, *, method: Method = "auto",
                 exact_below: int = EXACT_BELOW, nlist: int | None = None, nprobe: int | None = None,
                 hnsw_m: int = 32, ef_construction: int = 64, ef_search: int | None = None, seed: int = 0,
                 faiss_index: Any = None) -> None:
        if vectors.ndim != 2:
            raise AnnotationValidationError("vectors", expected="a 2-D array (N, D)", actual=vectors.shape)
        n = len(vectors)
        self.vectors = vectors
        self.ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        if len(self.ids) != n:
            raise AnnotationValidationError("ids", expected=f"{n} ids, one per vector", actual=len(self.ids))
        if method not in ("auto", "exact", "ivf", "hnsw"):
            raise AnnotationValidationError("method", expected="auto | exact | ivf | hnsw", actual=method)
        self.method: str = ("exact" if n < exact_below else "ivf") if method == "auto" else method
        if n == 0:
            self.method = "exact"
        self.ef_search = ef_search
        self.nprobe = nprobe
        self.index = faiss_index
        if self.method != "exact" and self.index is None:
            self.index = (self._build_hnsw(hnsw_m, ef_construction) if self.method == "hnsw"
                          else self._build_ivf(nlist, seed))
        if self.method == "ivf" and self.nprobe is None:
            self.nprobe = max(16, self.index.nlist // 16)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def _add(self, index: Any) -> None:
        for vs in _blocks(len(self.vectors), 65536):
            index.add(np.ascontiguousarray(self.vectors[vs], np.float32))

    def _build_hnsw(self, m: int, ef_construction: int) -> Any:
        import faiss

        index = faiss.IndexHNSWFlat(self.dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        self._add(index)
        return index

    def _build_ivf(self, nlist: int | None, seed: int) -> Any:
        import faiss

        n = len(self.vectors)
        nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, nlist * 40, 100_000), replace=False))  # k-means on a sample
        index.train(np.ascontiguousarray(self.vectors[sample], np.float32))
        self._add(index)
        return index

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(ids (Q, k) int64, scores (Q, k) float32), best first; -1 ids (score -inf) where fewer than k exist.

        ``queries`` (Q, D) or (D,) unit vectors; ``k`` is bounded by :data:`MAX_K`.
        """
        pos, scores = self.search_positions(queries, k)
        return np.where(pos >= 0, self.ids[np.maximum(pos, 0)], -1), scores

    def search_positions(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search`, with row positions in ``vectors`` instead of ids."""
        if not 1 <= k <= MAX_K:
            raise AnnotationValidationError("k", expected=f"1..{MAX_K}", actual=k)
        q = np.atleast_2d(np.asarray(queries, np.float32))
        if len(self) and q.shape[1] != self.dim:
            raise AnnotationValidationError("query vectors", expected=f"dimension {self.dim}", actual=q.shape[1])
        if self.method == "exact":
            pos, scores = exact_search(self.vectors, q, k)
            return pos, np.minimum(scores, 1.0)
        self._tune(k)
        scores, pos = self.index.search(np.ascontiguousarray(q), min(k, len(self)))
        scores = np.minimum(scores, 1.0)
        if pos.shape[1] < k:
            pos = np.pad(pos, ((0, 0), (0, k - pos.shape[1])), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, k - scores.shape[1])), constant_values=-np.inf)
        return pos.astype(np.int64), np.where(pos < 0, -np.inf, scores).astype(np.float32)

    def _tune(self, k: int) -> None:
        if self.method == "hnsw":
            self.index.hnsw.efSearch = self.ef_search or max(64, 4 * k)
        else:
            self.index.nprobe = min(self.nprobe or 16, self.index.nlist)

    def neighbours(self, k: int, *, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest other rows of every row: (positions (N, k), scores (N, k)), -1 / -inf where missing.

        A row itself is left out by position, so an identical copy of it is still found. Searches ``batch`` rows at
        a time (bounded memory)."""
        n = len(self)
        out_p = np.full((n, k), -1, np.int64)
        out_s = np.full((n, k), -np.inf, np.float32)
        kk = min(k + 1, MAX_K)
        for bs in _blocks(n, batch):
            pos, scores = self.search_positions(np.asarray(self.vectors[bs], np.float32), kk)
            drop = (pos == np.arange(bs.start, bs.stop)[:, None]) | (pos < 0)
            order = np.argsort(drop, axis=1, kind="stable")[:, :k]  # kept hits first, in their order
            pos, scores = np.take_along_axis(pos, order, 1), np.take_along_axis(scores, order, 1)
            gone = np.take_along_axis(drop, order, 1)
            out_p[bs, :pos.shape[1]] = np.where(gone, -1, pos)
            out_s[bs, :pos.shape[1]] = np.where(gone, -np.inf, scores)
        return out_p, out_s

    # ---- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the FAISS index to ``path`` atomically (nothing to write for exact search)."""
        if self.index is None:
            return
        import faiss

        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            faiss.write_index(self.index, str(tmp))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def cached_index(vectors: np.ndarray, ids: np.ndarray, folder: str | Path, *, stamp: str,
                 method: Method = "auto", exact_below: int = EXACT_BELOW) -> SimilarityIndex:
    """A :class:`SimilarityIndex` whose FAISS index is kept in ``folder`` (``index.faiss`` + ``index.json``) and
    reused while ``stamp`` (what the vectors are, e.g. their manifest's shard list) and the method are unchanged."""
    folder = Path(folder)
    chosen = ("exact" if len(vectors) < exact_below else "ivf") if method == "auto" else method
    if chosen == "exact" or len(vectors) == 0:
        return SimilarityIndex(vectors, ids, method="exact")
    path, meta_path = folder / "index.faiss", folder / "index.json"
    want = {"stamp": stamp, "method": chosen, "count": len(vectors)}
    try:
        if json.loads(meta_path.read_text(encoding="utf-8")) == want:
            import faiss

            return SimilarityIndex(vectors, ids, method=chosen, faiss_index=faiss.read_index(str(path)))
    except (OSError, ValueError, RuntimeError):
        pass
    index = SimilarityIndex(vectors, ids, method=chosen)
    index.save(path)
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(want), encoding="utf-8")
    os.replace(tmp, meta_path)
    return index


def stored_index(store: EmbeddingSet, *, method: Method = "auto",
                 exact_below: int = EXACT_BELOW) -> tuple[SimilarityIndex, EmbeddingRows]:
    """The index over a project's stored :class:`~visionloop.storage.embeddings.EmbeddingSet` (its FAISS index
    kept beside the vectors), and the rows saying what each vector is. Raises
    :class:`~visionloop.storage.embeddings.EmbeddingsMissingError` when nothing is stored."""
    m = store.manifest()
    if m is None or not m["count"]:
        raise EmbeddingsMissingError(store.folder.parents[2].name, store.key, store.kind)
    rows = store.rows()
    stamp = json.dumps(m["shards"], sort_keys=True)
    return cached_index(store.vectors(), rows.image_id, store.folder, stamp=stamp, method=method,
                        exact_below=exact_below), rows


def similar_images(project: Any, key: str, image_id: int, *, k: int = 10) -> dict[str, Any]:
    """The ``k`` images of a project most like image ``image_id`` (itself left out), from its stored image
    embeddings of backbone ``key``: ``{"image", "backbone", "method", "results": [{"id", "name", "score"}]}``.

    Raises :class:`~visionloop.storage.embeddings.EmbeddingsMissingError` when the embeddings, or the image's own
    vector (imported since they were computed), are missing."""
    query = project.image(image_id)
    store = EmbeddingSet(project.root, key, "images")
    index, _ = stored_index(store)
    pos = store.positions([image_id]).get(image_id)
    if pos is None:
        raise EmbeddingsMissingError(project.name, key, hint=(
            f"image {image_id} was added after the embeddings were computed; run `visionloop embed` (or the embed "
            "job) again to embed the new images"))
    query_vector = np.asarray(index.vectors[pos], np.float32)
    wanted = min(k + 1, MAX_K)
    while True:  # images deleted since the embeddings were computed are left out (the next embed run drops them)
        ids, scores = index.search(query_vector, wanted)
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and i != image_id]
        names = {im.id: im.name for im in project.images(ids=[i for i, _ in found])} if found else {}
        hits = [(i, s) for i, s in found if i in names][:k]
        if len(hits) == k or wanted >= min(len(index), MAX_K):
            break
        wanted = min(2 * wanted, MAX_K)
    return {"image": {"id": query.id, "name": query.name}, "backbone": key, "method": index.method,
            "results": [{"id": i, "name": names.get(i, ""), "score": round(s, 4)} for i, s in hits]}
