"""Which unlabelled images to label next: :func:`rank_unlabelled`, behind ``visionloop next`` and ``GET .../next``.

The pool is the project's images without an annotation, leaving out gold images and images in open work (a batch
assigned them and they are not approved yet). Strategies:

* ``entropy``, ``margin``, ``least_confidence`` (:mod:`visionloop.active.acquisition`): the model predicts every
  image of the pool (the torch-free :class:`~visionloop.inference.Predictor` on a package, the deployed one by
  default, or a training run's own model) and the most uncertain come first. Classification scores all class
  probabilities (``Prediction.probs``); tagging the binary uncertainty of each tag, averaged; detection and instance
  segmentation each box's uncertainty from its score (boxes down to a score of 0.05), the mean of the top 3 per
  image (entropy: binary entropy; margin and least confidence: ``1 - |2s - 1|``, which is both for one score).
* ``--diversity cluster`` (the default for those) then splits the 10 x n most uncertain into n clusters of the stored
  embeddings (KMeans weighted by uncertainty) and takes the image nearest each centre, so a batch is not n
  near-copies and not n odd ones either; ``kcenter`` picks among the 5 x n most uncertain by k-center greedy, away
  from each other and from already labelled images.
* ``typiclust``: the cold start, no model needed: the most typical image of each of n clusters of the embeddings.
* ``random``: a seeded uniform draw (the unbiased baseline).

``auto`` (the default) is ``entropy`` with a model and ``typiclust`` without one; an uncertainty strategy asked for
while no model can be found falls back to the cold start too, and the result says so (``cold_start``, ``notes``).
Embeddings are read from the project (``visionloop embed``); none are computed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from visionloop.active.acquisition import (
    binary_entropy,
    box_uncertainty,
    classification_scores,
    detection_uncertainty,
)
from visionloop.active.diversity import (
    CLUSTER_CANDIDATE_FACTOR,
    DEFAULT_CANDIDATE_FACTOR,
    cluster_top,
    diverse_top,
    typiclust,
)
from visionloop.core.errors import AnnotationValidationError, ConflictError, ImageError, NotFoundError
from visionloop.core.task import Task
from visionloop.inference import Prediction, Predictor
from visionloop.storage.deployment import PACKAGES_DIR, deployed_package_dir
from visionloop.storage.embeddings import EmbeddingSet, EmbeddingsMissingError, backbone_key
from visionloop.storage.models import AnnotationRow, ImageRow
from visionloop.storage.project import Project
from visionloop.storage.work import open_or_gold_image_ids

__all__ = ["DEFAULT_BACKBONE", "DETECTION_FLOOR", "MAX_LABELLED_CENTRES", "MAX_N", "Diversity", "NextResult",
           "Ranked", "Strategy", "deployed_package", "rank_unlabelled", "uncertainty", "unlabelled_image_ids"]

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
"""The embeddings read by default: those ``visionloop embed`` computes by default."""
DETECTION_FLOOR = 0.05
"""Boxes are predicted down to this score for uncertainty (the package's thresholds would hide the doubtful ones)."""
MAX_LABELLED_CENTRES = 5000
"""At most this many labelled images (a seeded sample) keep k-center picks and TypiClust clusters away from them."""
MAX_N = 10_000
_CHUNK = 32

Progress = Callable[[int, int], None]


class Strategy(StrEnum):
    AUTO = "auto"
    ENTROPY = "entropy"
    MARGIN = "margin"
    LEAST_CONFIDENCE = "least_confidence"
    RANDOM = "random"
    TYPICLUST = "typiclust"


UNCERTAINTY = (Strategy.ENTROPY, Strategy.MARGIN, Strategy.LEAST_CONFIDENCE)


class Diversity(StrEnum):
    CLUSTER = "cluster"
    KCENTER = "kcenter"
    NONE = "none"


@dataclass(frozen=True)
class Ranked:
    """One image to label: ``score`` (uncertainty in 0..1, typicality for typiclust, 0 for random) and why."""

    id: int
    name: str
    score: float
    strategy: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "score": round(self.score, 6), "strategy": self.strategy,
                "reason": self.reason}


@dataclass
class NextResult:
    """The ranking and how it was made: the strategy used (after ``auto`` and the cold-start fallback), the model
    (``{"source": "package" | "run" | "deployed", "name": ...}`` or None), the ``pool`` of unlabelled images and how
    many of them were ``considered`` (all, or a seeded sample of ``max_pool``), and notes for people."""

    strategy: str
    diversity: str
    cold_start: bool
    model: dict[str, Any] | None
    backbone: str | None
    pool: int
    considered: int
    results: list[Ranked]
    notes: list[str] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "diversity": self.diversity, "cold_start": self.cold_start,
                "model": self.model, "backbone": self.backbone, "pool": self.pool, "considered": self.considered,
                "notes": self.notes, "unreadable": self.unreadable, "results": [r.to_json() for r in self.results]}


def _parse(enum: type[StrEnum], value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise NotFoundError(what, value, choices=[e.value for e in enum]) from None


# ---- the pool ------------------------------------------------------------------------------------------------------
def unlabelled_image_ids(project: Project) -> list[int]:
    """Ids (ascending) of the images without an annotation, not gold and not in open work, deleted ones left out."""
    with project.engine.connect() as conn:
        ids = conn.execute(select(ImageRow.id).where(
            ImageRow.deleted_at.is_(None), ImageRow.id.not_in(select(AnnotationRow.image_id)))
            .order_by(ImageRow.id)).scalars().all()
    busy = open_or_gold_image_ids(project)
    return [int(i) for i in ids if i not in busy]


def _labelled_ids(project: Project) -> list[int]:
    with project.engine.connect() as conn:
        return [int(i) for i in conn.execute(select(AnnotationRow.image_id).join(
            ImageRow, ImageRow.id == AnnotationRow.image_id).where(ImageRow.deleted_at.is_(None))
            .order_by(AnnotationRow.image_id)).scalars()]


# ---- the model -----------------------------------------------------------------------------------------------------
def deployed_package(project: Project) -> Path | None:
    """The folder of the package deployed in the project (``PROJECT/deployment.json``), or None (nothing deployed,
    or a deployed package that is gone)."""
    try:
        return deployed_package_dir(project.root)
    except NotFoundError:
        return None


def _package_path(project: Project, package: str | Path) -> Path:
    path = Path(package)
    if path.exists():
        return path
    name = str(package)
    folder = Path(project.root) / PACKAGES_DIR / name
    if Path(name).name == name and (folder / "manifest.json").is_file():
        return folder
    root = Path(project.root) / PACKAGES_DIR
    known = sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []
    raise NotFoundError("package", name, choices=known, hint="give a package folder, or a name under PROJECT/packages")


def _open_model(project: Project, *, package: str | Path | None, run: str | None,
                ) -> tuple[Predictor | None, dict[str, Any] | None]:
    """A predictor that answers every class's probability and boxes down to the floor, and what it is."""
    if package is not None and run is not None:
        raise ConflictError("give a package or a run, not both")
    if run is not None:
        from visionloop.export.api import run_predictor

        pred = run_predictor(project, run, top_k=1_000_000, score_threshold=DETECTION_FLOOR)
        return pred, {"source": "run", "name": pred.manifest.run_id or run}
    source, path = ("package", _package_path(project, package)) if package is not None else \
        ("deployed", deployed_package(project))
    if path is None:
        return None, None
    pred = Predictor(path, sessions=1, top_k=1_000_000, score_threshold=DETECTION_FLOOR)
    return pred, {"source": source, "name": path.name if source == "deployed" else str(package)}


# ---- scoring -------------------------------------------------------------------------------------------------------
def uncertainty(pred: Prediction, strategy: Strategy | str, *, classes: Sequence[int]) -> tuple[float, str]:
    """(uncertainty in 0..1, reason) of one prediction under an uncertainty strategy; ``classes``: the model's class
    ids in its output order."""
    strategy = Strategy(strategy)
    if strategy not in UNCERTAINTY:
        raise AnnotationValidationError("uncertainty strategy", expected="entropy | margin | least_confidence",
                                        actual=strategy.value)
    if pred.task == Task.CLASSIFICATION:
        p = _class_probs(pred, classes)
        score = float(classification_scores(p[None], strategy.value)[0])
        top = sorted(pred.scores, key=lambda s: -s.score)[:2]
        return score, f"{strategy.value} {score:.3f}; " + ", ".join(f"{s.name} {s.score:.2f}" for s in top)
    if pred.task == Task.TAGGING:
        p = np.asarray([s.score for s in pred.scores], np.float64)
        per_tag = binary_entropy(p) if strategy is Strategy.ENTROPY else box_uncertainty(p, kind="distance")
        score = float(per_tag.mean()) if len(per_tag) else 0.0
        worst = sorted(zip(per_tag, pred.scores, strict=True), key=lambda t: -t[0])[:2]
        return score, f"{strategy.value} {score:.3f} over {len(p)} tags; least sure: " + ", ".join(
            f"{s.name} {s.score:.2f}" for _, s in worst)
    if pred.class_map is not None:
        conf = np.asarray([s.score for s in pred.scores], np.float64)
        score = float(1.0 - conf.mean()) if len(conf) else 1.0
        return score, f"1 - mean segment confidence {score:.3f} over {len(conf)} classes"
    s = np.asarray([d.score for d in pred.detections], np.float64)
    kind = "entropy" if strategy is Strategy.ENTROPY else "distance"
    score = float(detection_uncertainty([s], kind=kind)[0])
    doubtful = int(((s >= 0.2) & (s <= 0.8)).sum())
    return score, (f"box {strategy.value} {score:.3f} (mean of the top 3 of {len(s)} boxes at >= "
                   f"{DETECTION_FLOOR}; {doubtful} between 0.2 and 0.8)" if len(s) else
                   f"no box at all at >= {DETECTION_FLOOR}: {score:.3f}")


def _class_probs(pred: Prediction, classes: Sequence[int]) -> np.ndarray:
    """Every class's probability in model order: ``probs``, else the top-k ``scores`` with the rest spread evenly."""
    if pred.probs is not None and len(pred.probs) == len(classes):
        return np.clip(np.asarray(pred.probs, np.float64), 0.0, 1.0)
    out = np.zeros(len(classes))
    pos = {c: i for i, c in enumerate(classes)}
    for s in pred.scores:
        out[pos[s.class_id]] = s.score
    rest = len(classes) - len(pred.scores)
    if rest > 0:
        out[out == 0] = max(0.0, 1.0 - out.sum()) / rest
    return np.clip(out, 0.0, 1.0)


def _score_pool(project: Project, predictor: Predictor, ids: Sequence[int], strategy: Strategy,
                progress: Progress | None) -> tuple[dict[int, tuple[float, str]], list[int]]:
    classes = [c.id for c in predictor.classes]
    shas = {im.id: im.sha256 for im in project.images(ids=list(ids))}
    out: dict[int, tuple[float, str]] = {}
    failed: list[int] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = [i for i in ids[start:start + _CHUNK] if i in shas]
        blobs: list[Any] = []
        for i in chunk:
            try:
                blobs.append(project.blobs.read(shas[i]))
            except (OSError, FileNotFoundError):
                blobs.append(b"")
        preds = predictor.predict_batch(blobs, return_errors=True, score_threshold=DETECTION_FLOOR)
        for i, p in zip(chunk, preds, strict=True):
            if isinstance(p, ImageError):
                failed.append(i)
            else:
                out[i] = uncertainty(p, strategy, classes=classes)
        if progress:
            progress(min(start + _CHUNK, len(ids)), len(ids))
    return out, failed


# ---- embeddings ----------------------------------------------------------------------------------------------------
def _vectors(project: Project, backbone: str, ids: Sequence[int], *, why: str) -> np.ndarray:
    """The stored whole-image vectors of ``ids`` (in order); raises EmbeddingsMissingError naming the fix."""
    key = backbone_key(backbone)
    store = EmbeddingSet(project.root, key, "images")
    hint = (f"{why} needs the images' embeddings: run `visionloop embed` on the project (--backbone {backbone}) "
            "or queue the platform's embed job; or use --diversity none / --strategy random")
    if not store.exists():
        raise EmbeddingsMissingError(project.name, key, hint=hint)
    pos = store.positions(ids)
    missing = [i for i in ids if i not in pos]
    if missing:
        raise EmbeddingsMissingError(project.name, key, hint=f"{len(missing)} of the {len(ids)} images (e.g. image "
                                     f"{missing[0]}) have none yet; {hint}")
    vectors = store.vectors()
    return np.asarray(vectors[[pos[i] for i in ids]], np.float32) if ids else np.zeros((0, vectors.shape[1]),
                                                                                        np.float32)


def _labelled_vectors(project: Project, backbone: str, rng: np.random.Generator) -> np.ndarray | None:
    """Vectors of (a sample of) the labelled images that have one."""
    labelled = _labelled_ids(project)
    if not labelled:
        return None
    if len(labelled) > MAX_LABELLED_CENTRES:
        labelled = sorted(rng.choice(labelled, size=MAX_LABELLED_CENTRES, replace=False).tolist())
    store = EmbeddingSet(project.root, backbone_key(backbone), "images")
    pos = store.positions(labelled)
    if not pos:
        return None
    return np.asarray(store.vectors()[sorted(pos.values())], np.float32)


# ---- the ranking ---------------------------------------------------------------------------------------------------
def _diverse(project: Project, backbone: str, diversity: Diversity, ids: list[int], cand: np.ndarray, s: np.ndarray,
             x: np.ndarray, n: int, factor: int, seed: int, rng: np.random.Generator,
             scored: dict[int, tuple[float, str]]) -> list[tuple[int, float, str]]:
    """(image id, uncertainty, why) of n candidates (positions ``cand`` of ``ids``, embeddings ``x``) by the
    diversity step."""
    def row(j: int, why: str) -> tuple[int, float, str]:
        i = ids[cand[j]]
        return i, float(s[cand[j]]), f"{scored[i][1]}; {why}"

    if diversity is Diversity.CLUSTER:
        return [row(p.index, f"the middle of a cluster of {p.size} among the {len(cand)} most uncertain")
                for p in cluster_top(s[cand], x, n, factor=factor, seed=seed)]
    picks = diverse_top(s[cand], x, n, factor=factor, labelled=_labelled_vectors(project, backbone, rng))
    return [row(p.index, f"k-center among the {len(cand)} most uncertain, {p.distance:.3f} from the nearest image "
                "chosen or labelled" if np.isfinite(p.distance) else
                f"k-center among the {len(cand)} most uncertain: the most uncertain") for p in picks]



def rank_unlabelled(
    project: Project, *, n: int, strategy: Strategy | str = Strategy.AUTO,
    diversity: Diversity | str = Diversity.CLUSTER, package: str | Path | None = None, run: str | None = None,
    predictor: Predictor | None = None, model_name: str | None = None, find_model: bool = True,
    backbone: str = DEFAULT_BACKBONE,
    max_pool: int | None = None, seed: int = 0, factor: int | None = None,
    progress: Progress | None = None,
) -> NextResult:
    """The ``n`` unlabelled images to label next, best first (see the module docstring).

    The model: ``predictor`` (an open one, e.g. the platform's deployed model; ``model_name`` says which), else
    ``package`` (a folder, or a name under ``PROJECT/packages``), else ``run`` (a training run id), else the
    project's deployed package (``find_model=False``: only ``predictor``). ``max_pool`` scores a seeded sample of
    that many pool images (all when None). ``diversity`` applies to the uncertainty strategies. ``factor``: the
    diversity step chooses among ``factor`` x n of the most uncertain (default: 10 for cluster, 5 for kcenter).
    ``progress(done, total)`` counts predicted images.
    """
    if not 1 <= int(n) <= MAX_N:
        raise AnnotationValidationError("n", expected=f"1..{MAX_N} images", actual=n)
    strategy = _parse(Strategy, strategy, "strategy")
    diversity = _parse(Diversity, diversity, "diversity")
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    model: dict[str, Any] | None = None
    own = False
    if strategy in (Strategy.AUTO, *UNCERTAINTY):
        if predictor is not None:
            model = {"source": "deployed", "name": model_name or predictor.package.name}
        elif find_model:
            predictor, model = _open_model(project, package=package, run=run)
            own = predictor is not None
        if predictor is None:
            notes.append("cold start: the project has no model (no package deployed, none given), so the most "
                         "typical images of the embeddings come first (TypiClust); deploy or name a model for "
                         "uncertainty sampling")
            strategy = Strategy.TYPICLUST
        elif strategy is Strategy.AUTO:
            strategy = Strategy.ENTROPY
    try:
        pool = unlabelled_image_ids(project)
        considered = pool
        if max_pool is not None and len(pool) > max_pool:
            considered = sorted(rng.choice(pool, size=int(max_pool), replace=False).tolist())
            notes.append(f"scored a random sample of {len(considered)} of the {len(pool)} unlabelled images (the "
                         "request limit); `visionloop next` on the server ranks them all")
        result = NextResult(strategy=strategy.value, diversity=diversity.value if strategy in UNCERTAINTY else "none",
                            cold_start=strategy is Strategy.TYPICLUST and model is None, model=model,
                            backbone=None, pool=len(pool), considered=len(considered), results=[], notes=notes)
        if not considered:
            notes.append("no unlabelled image is left outside gold and open work")
            return result
        chosen: list[tuple[int, float, str]]
        if strategy is Strategy.RANDOM:
            picks = rng.permutation(len(considered))[:n]
            chosen = [(considered[i], 0.0, "random draw (seeded)") for i in picks]
        elif strategy is Strategy.TYPICLUST:
            result.backbone = backbone_key(backbone)
            x = _vectors(project, backbone, considered, why="typiclust")
            labelled = _labelled_vectors(project, backbone, rng)
            chosen = [(considered[p.index], p.typicality,
                       f"typicality {p.typicality:.3f}: the most typical image of cluster {p.cluster} "
                       f"({p.size} unlabelled images)") for p in typiclust(x, n, labelled=labelled, seed=seed)]
        elif predictor is not None:
            scored, failed = _score_pool(project, predictor, considered, strategy, progress)
            result.unreadable = failed
            if failed:
                notes.append(f"{len(failed)} images could not be read and were left out")
            ids = [i for i in considered if i in scored]
            s = np.asarray([scored[i][0] for i in ids])
            if diversity is not Diversity.NONE and len(ids) > n:
                result.backbone = backbone_key(backbone)
                f = factor or (CLUSTER_CANDIDATE_FACTOR if diversity is Diversity.CLUSTER else DEFAULT_CANDIDATE_FACTOR)
                cand = np.argsort(-s, kind="stable")[: n * f]
                x = _vectors(project, backbone, [ids[j] for j in cand], why=f"{diversity.value} diversity")
                chosen = _diverse(project, backbone, diversity, ids, cand, s, x, n, f, seed, rng, scored)
            else:
                result.diversity = Diversity.NONE.value  # asked for none, or every image is taken anyway
                chosen = [(ids[j], float(s[j]), scored[ids[j]][1]) for j in np.argsort(-s, kind="stable")[:n]]
        else:  # pragma: no cover - an uncertainty strategy always has a predictor here
            raise ConflictError(f"strategy {strategy.value} needs a model")
        names = {im.id: im.name for im in project.images(ids=[c[0] for c in chosen])}
        result.results = [Ranked(id=i, name=names.get(i, ""), score=sc, strategy=strategy.value, reason=why)
                          for i, sc, why in chosen]
        return result
    finally:
        if own and predictor is not None:
            predictor.close()
