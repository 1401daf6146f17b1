"""Similarity search benchmark: the approximate FAISS index of ``visionloop.quality.similarity`` against exact numpy
search, in the same run on this machine.

Collections:

1. ``bccd``: real embeddings: every BCCD image and every box crop, embedded by the default backbone
   (``tf_efficientnet_lite0``, 1280-d) through a project (``visionloop.models.embed.embed_project``); queries are
   200 of the stored vectors;
2. ``uniform_100k``: 100,000 random unit vectors, 1280-d (the worst case for any approximate index);
3. ``clustered_100k``: 100,000 unit vectors, 1280-d, drawn around 1,000 centres (like embeddings of a real
   collection, where similar images gather); queries drawn the same way, not in the collection;
4. ``clustered_1m``: 1,000,000 such vectors at 256-d: 1M x 1280 float32 would be 4.9 GiB (twice that with the
   index's copy), more than this machine's memory allows beside the rest; 256 is the size a PCA of the embeddings
   would keep.

For each: the exact search (``exact_search``: blocked matrix products; a batch of queries and one query at a time),
the IVF index (``IndexIVFFlat``, inner product; the library's default above ``EXACT_BELOW`` rows) and, up to
100,000 rows, the HNSW index: build seconds, index bytes (serialised size), query milliseconds (batch: per query;
single: median of one-at-a-time), and recall@10 against the exact answer. Peak resident memory of the process is
reported at the end.

Results: benchmarks/results/similarity.json (``--smoke``: small collections, similarity.smoke.json).

    nice -n 10 python benchmarks/similarity.py [--smoke]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from common import RESULTS, SHARED, write_result  # noqa: E402

from visionloop.quality.similarity import SimilarityIndex, exact_search, normalize  # noqa: E402

K = 10
PARTS = ("bccd", "uniform_100k", "clustered_100k", "clustered_1m")


def clustered(n: int, dim: int, *, centres: int, spread: float, seed: int) -> np.ndarray:
    """Unit vectors around ``centres`` random directions; ``spread`` sets how far (cosine to the centre ~
    1 / sqrt(1 + spread**2))."""
    rng = np.random.default_rng(seed)
    c = normalize(rng.standard_normal((centres, dim), dtype=np.float32))
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(n, s + 100_000) - s
        pick = rng.integers(0, centres, m)
        noise = rng.standard_normal((m, dim), dtype=np.float32) * (spread / np.sqrt(dim))
        out[s:s + m] = normalize(c[pick] + noise)
    return out


def uniform(n: int, dim: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(n, s + 100_000) - s
        out[s:s + m] = normalize(rng.standard_normal((m, dim), dtype=np.float32))
    return out


def bccd_embeddings(n_images: int | None) -> np.ndarray:
    """Stored image and crop embeddings of BCCD (or its first ``n_images``) through a real project."""
    import shutil

    from visionloop.ingest import import_source
    from visionloop.models.embed import embed_project, load_embedder
    from visionloop.storage import Project
    from visionloop.storage.embeddings import EmbeddingSet

    src = SHARED / "datasets" / "bccd" / "BCCD"
    with tempfile.TemporaryDirectory() as tmp:
        voc = Path(tmp) / "voc"
        (voc / "JPEGImages").mkdir(parents=True)
        (voc / "Annotations").mkdir()
        for jpg in sorted((src / "JPEGImages").glob("*.jpg"))[:n_images]:
            xml = src / "Annotations" / f"{jpg.stem}.xml"
            if xml.is_file():
                shutil.copy(jpg, voc / "JPEGImages")
                shutil.copy(xml, voc / "Annotations")
        with Project.create(Path(tmp) / "p", task="detection") as p:
            import_source(p, voc)
            emb = load_embedder()
            parts = []
            for kind in ("images", "crops"):
                embed_project(p, emb, kind=kind)
                parts.append(np.asarray(EmbeddingSet(p.root, emb.key, kind).vectors()))
    return np.concatenate(parts)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a[a >= 0]) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)]))


def index_bytes(index: SimilarityIndex) -> int:
    import faiss

    return int(faiss.serialize_index(index.index).nbytes)


def single_ms(search: Any, queries: np.ndarray, n: int) -> float:
    times = []
    for q in queries[:n]:
        t = time.perf_counter()
        search(q[None])
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 3)


def sweep(index: SimilarityIndex, queries: np.ndarray, exact_ids: np.ndarray, knob: str,
          values: list[int]) -> list[dict[str, float]]:
    """Recall@10 and batch time for other settings of the index's speed/recall knob (same index)."""
    out = []
    default = getattr(index, knob)
    for v in values:
        setattr(index, knob, v)
        t = time.perf_counter()
        ids, _ = index.search(queries, K)
        ms = 1000 * (time.perf_counter() - t) / len(queries)
        out.append({knob: v, f"recall@{K}": round(recall(ids, exact_ids), 4), "batch_ms_per_query": round(ms, 4)})
    setattr(index, knob, default)
    return out


def measure(name: str, x: np.ndarray, queries: np.ndarray, *, methods: tuple[str, ...], singles: int,
            note: str = "") -> dict:
    print(f"{name}: {x.shape[0]:,} x {x.shape[1]}", flush=True)
    out: dict[str, Any] = {"n": int(x.shape[0]), "dim": int(x.shape[1]), "queries": int(len(queries)),
                           "vectors_mb": round(x.nbytes / 2**20, 1),
                           "measured": datetime.now(UTC).isoformat(timespec="seconds")}
    if note:
        out["note"] = note
    t = time.perf_counter()
    exact_ids, _ = exact_search(x, queries, K)
    batch = time.perf_counter() - t
    out["exact"] = {"batch_ms_per_query": round(1000 * batch / len(queries), 3),
                    "single_ms": single_ms(lambda q: exact_search(x, q, K), queries, singles)}
    print(f"  exact {out['exact']}", flush=True)
    for method in methods:
        t = time.perf_counter()
        index = SimilarityIndex(x, method=method)
        build = time.perf_counter() - t
        t = time.perf_counter()
        ids, _ = index.search(queries, K)
        batch = time.perf_counter() - t
        single = single_ms(lambda q, index=index: index.search(q, K), queries, singles)
        r = {"build_s": round(build, 2), "index_mb": round(index_bytes(index) / 2**20, 1),
             "batch_ms_per_query": round(1000 * batch / len(queries), 4), "single_ms": single,
             f"recall@{K}": round(recall(ids, exact_ids), 4),
             "speedup_single": round(out["exact"]["single_ms"] / max(single, 1e-6), 1),
             "speedup_batch": round(out["exact"]["batch_ms_per_query"] / max(1000 * batch / len(queries), 1e-6), 1)}
        if method == "ivf":
            r.update(nlist=int(index.index.nlist), nprobe=int(index.nprobe))
            r["sweep"] = sweep(index, queries, exact_ids, "nprobe",
                               [p for p in (4, 8, 16, 32, 64, 128) if p < index.index.nlist])
        else:
            r.update(m=32, ef_construction=int(index.index.hnsw.efConstruction),
                     ef_search=int(index.index.hnsw.efSearch))
            r["sweep"] = sweep(index, queries, exact_ids, "ef_search", [16, 32, 128])
        out[method] = r
        print(f"  {method} {r}", flush=True)
        del index
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="small collections (seconds), for CI")
    ap.add_argument("--bccd-images", type=int, default=None, help="embed only the first N BCCD images")
    ap.add_argument("--parts", default=",".join(PARTS), help="collections to measure (comma-separated); the others "
                    "keep their figures from the last results file")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    smoke = args.smoke
    n100, n1m, dim, dim_small = (3000, 6000, 128, 32) if smoke else (100_000, 1_000_000, 1280, 256)
    n_q, singles = (50, 20) if smoke else (200, 50)
    results: dict[str, Any] = {"k": K}
    previous = RESULTS / ("similarity.smoke.json" if smoke else "similarity.json")
    if previous.is_file() and parts != set(PARTS):
        kept = json.loads(previous.read_text())
        results.update({k: v for k, v in kept.items() if k in PARTS and k not in parts})
    t0 = time.perf_counter()

    def save() -> None:
        write_result("similarity", {**results, "complete": False}, smoke=smoke)

    if "bccd" in parts:
        n_images = args.bccd_images or (2 if smoke else None)
        real = bccd_embeddings(n_images)
        rng = np.random.default_rng(0)
        results["bccd"] = measure("bccd", real, real[rng.choice(len(real), min(n_q, len(real)), replace=False)],
                                  methods=("ivf", "hnsw"), singles=singles,
                                  note="BCCD images and box crops, default backbone (tf_efficientnet_lite0, 1280-d);"
                                       " queries are stored vectors")
        results["bccd"]["bccd_images"] = n_images or "all"
        del real
        save()
    if "uniform_100k" in parts:
        x = uniform(n100 + n_q, dim, seed=1)
        results["uniform_100k"] = measure("uniform_100k", x[:n100], x[n100:], methods=("ivf",), singles=singles,
                                          note="random unit vectors: no structure, the worst case")
        del x
        save()

    def clustered_100k() -> np.ndarray:
        return clustered(n100 + n_q, dim, centres=max(10, n100 // 100), spread=1.0, seed=2)

    if "clustered_100k" in parts:
        x = clustered_100k()
        results["clustered_100k"] = measure("clustered_100k", x[:n100], x[n100:], methods=("ivf",),
                                            singles=singles, note="1,000 clusters (cosine to the centre ~0.7); "
                                            "queries not in the set")
        del x
        save()
    if "clustered_1m" in parts:
        x = clustered(n1m + n_q, dim_small, centres=max(10, n1m // 1000), spread=1.0, seed=3)
        results["clustered_1m"] = measure(
            "clustered_1m", x[:n1m], x[n1m:], methods=("ivf",), singles=singles,
            note=f"{dim_small}-d instead of 1280-d: 1M x 1280 float32 is 4.9 GiB, twice that with the index's copy; "
                 f"{dim_small} is what a PCA of the embeddings would keep. HNSW left out: its build takes tens of "
                 "minutes on this machine's 2 cores")
        del x
        save()
    if "clustered_100k" in parts:
        x = clustered_100k()  # the graph index last: the slowest to build
        results["clustered_100k"]["hnsw"] = measure("clustered_100k", x[:n100], x[n100:], methods=("hnsw",),
                                                    singles=singles)["hnsw"]
        del x
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    path = write_result("similarity", {**results, "complete": True}, smoke=smoke)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
