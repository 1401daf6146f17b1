"""The similarity index: exact search against brute force, FAISS (IVF, HNSW) against exact, bounds, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from visionloop.core.errors import AnnotationValidationError
from visionloop.quality.similarity import MAX_K, SimilarityIndex, cached_index, exact_search, normalize


def clustered(n: int, dim: int, centres: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = normalize(rng.standard_normal((centres, dim)))
    return normalize(c[rng.integers(0, centres, n)] + rng.standard_normal((n, dim)) / np.sqrt(dim))


@pytest.fixture(scope="module")
def collection() -> tuple[np.ndarray, np.ndarray]:
    x = clustered(4200, 64, centres=60)
    return x[:4000], x[4000:]


def test_exact_search_in_blocks_equals_brute_force(collection, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import visionloop.quality.similarity as sim

    x, q = collection
    monkeypatch.setattr(sim, "_BLOCK", 333)  # many blocks, a last partial one
    monkeypatch.setattr(sim, "_QUERY_BLOCK", 37)
    pos, scores = exact_search(x, q, 10)
    full = q @ x.T
    want = np.argsort(-full, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(scores, np.take_along_axis(full, want, 1), rtol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(full, pos, 1), scores, rtol=1e-5)  # ties may swap places


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_faiss_agrees_with_exact_search(collection, method: str) -> None:  # noqa: ANN001
    x, q = collection
    ids = np.arange(len(x), dtype=np.int64) * 3 + 100
    exact = SimilarityIndex(x, ids, method="exact")
    approx = SimilarityIndex(x, ids, method=method)
    assert exact.method == "exact" and approx.method == method
    e_ids, e_scores = exact.search(q, 10)
    a_ids, a_scores = approx.search(q, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(a_ids, e_ids, strict=True)])
    assert recall >= 0.95, recall  # measured 1.0 for both on this clustered fixture
    np.testing.assert_allclose(a_scores[:, 0], e_scores[:, 0], atol=1e-5)  # the best hit is found
    assert set(a_ids.ravel()) <= set(ids)


def test_auto_switches_to_faiss_above_the_threshold(collection) -> None:  # noqa: ANN001
    x, _ = collection
    assert SimilarityIndex(x, exact_below=5000).method == "exact"
    assert SimilarityIndex(x, exact_below=1000).method == "ivf"


def test_neighbours_leave_each_row_out_but_find_its_identical_copy() -> None:
    x = clustered(50, 16, centres=5, seed=1)
    x[7] = x[3]
    pos, scores = SimilarityIndex(x, method="exact").neighbours(3)
    assert all(r not in pos[r] for r in range(50))
    assert pos[3, 0] == 7 and pos[7, 0] == 3 and scores[3, 0] == pytest.approx(1.0, abs=1e-6)


def test_k_is_bounded_and_short_collections_pad() -> None:
    x = clustered(3, 8, centres=2)
    index = SimilarityIndex(x)
    ids, scores = index.search(x[0], 5)
    assert ids.shape == (1, 5) and ids[0, :3].tolist().count(-1) == 0 and ids[0, 3:].tolist() == [-1, -1]
    assert np.isneginf(scores[0, 3:]).all() and scores.max() <= 1.0
    for bad in (0, MAX_K + 1):
        with pytest.raises(AnnotationValidationError, match="k"):
            index.search(x[0], bad)
    with pytest.raises(AnnotationValidationError, match="dimension"):
        index.search(np.ones(5, np.float32), 2)


def test_cached_index_is_reused_while_its_stamp_holds(collection, tmp_path: Path) -> None:  # noqa: ANN001
    x, q = collection
    ids = np.arange(len(x))
    first = cached_index(x, ids, tmp_path, stamp="a", exact_below=1000)
    assert (tmp_path / "index.faiss").is_file()
    mtime = (tmp_path / "index.faiss").stat().st_mtime_ns
    again = cached_index(x, ids, tmp_path, stamp="a", exact_below=1000)
    assert (tmp_path / "index.faiss").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first.search(q, 5)[0], again.search(q, 5)[0])
    cached_index(x, ids, tmp_path, stamp="b", exact_below=1000)  # new vectors: rebuilt
    assert (tmp_path / "index.faiss").stat().st_mtime_ns != mtime
