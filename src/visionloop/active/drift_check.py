"""A drift check over a project: recent production samples compared with what the deployed model was trained on.

Reference
    The package's training version (``manifest.dataset_version``, or ``reference=`` a version of the project): its
    train images for the embeddings (MMD) and the image statistics; the model's predictions of its validation split
    (the test split when it has none) for the confidences and the predicted-class histogram, predicted once with the
    package (:class:`~visionloop.inference.Predictor`) and kept in ``PROJECT/drift/`` by model and version.
Production
    The production samples (table ``production_samples``) received in the window, by default only those of the
    *random slice*: the other samplers choose images *because* the model was unsure of them or saw many objects, so
    their confidences and classes differ from the training set's by construction and would raise the alert every
    time; the random slice is an unbiased sample of what production sees. The confidences and classes are the ones
    the model server answered (samples made by another model are left out of those two, and counted).

Each side is subsampled (seeded) to ``max_samples`` images, so a check costs the same whatever the window holds.
Embeddings missing for the images involved are computed and added to the stored set (``PROJECT/embeddings``), or,
with ``compute_embeddings=False``, the check says to run ``visionloop embed``. The report is written with
:func:`~visionloop.storage.drift.add_drift_report`; when a statistic crosses its threshold
(:class:`~visionloop.active.drift.DriftThresholds`) it alerts, and ``EventKind.DRIFT_ALERT`` is emitted in the same
transaction. ``loop_requested`` in its details says that the loop should start (the project's ``[loop]`` table in
``visionloop.toml`` has ``on_drift = true``): the platform's job queue then queues a ``loop`` job after the drift job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from visionloop.active.drift import (
    IMAGE_STATS,
    DriftThresholds,
    class_counts_test,
    compare_values,
    image_stats,
    mmd_test,
    prediction_summary,
    psi,
    two_sample_test,
)
from visionloop.core.errors import AnnotationValidationError, ConflictError, ImageError, NotFoundError
from visionloop.core.package import Manifest, load_package
from visionloop.storage.drift import DriftReport, add_drift_report, get_drift_report
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet, EmbeddingsMissingError, backbone_key
from visionloop.storage.events import EventKind, api_path, emit_event
from visionloop.storage.models import ImageRow
from visionloop.storage.production import ProductionSampleRow
from visionloop.storage.project import CONFIG_FILE, Project
from visionloop.storage.versions import get_version, version_items

__all__ = ["DEFAULT_WINDOW", "DRIFT_DIR", "DriftOptions", "ProductionSample", "check_drift", "loop_on_drift",
           "parse_window", "production_samples"]

DRIFT_DIR = "drift"
"""``PROJECT/drift``: the reference's cached predictions and image statistics."""
DEFAULT_WINDOW = timedelta(hours=24)
CACHE_FILES = 8
"""Cached references kept in ``PROJECT/drift`` (the least recently written go first)."""
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_WINDOW = timedelta(days=366)

Progress = Callable[[float, str], None]


def parse_window(text: str) -> timedelta:
    """``"24h"``, ``"30m"``, ``"7d"``, ``"2w"``, ``"90s"`` -> timedelta (more than 0, at most a year)."""
    m = _WINDOW.match(text or "")
    if not m:
        raise AnnotationValidationError("drift window", expected="a number and a unit s, m, h, d or w (e.g. 24h)",
                                        actual=repr(text))
    window = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    if not timedelta(0) < window <= MAX_WINDOW:
        raise AnnotationValidationError("drift window", expected="more than 0 and at most 366d", actual=repr(text))
    return window


def loop_on_drift(project: Project) -> bool:
    """Whether a drift alert starts the loop: ``on_drift = true`` in the ``[loop]`` table of the project's
    ``visionloop.toml`` (default false)."""
    try:
        cfg = tomllib.loads((Path(project.root) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    loop = cfg.get("loop")
    return bool(isinstance(loop, dict) and loop.get("on_drift") is True)


@dataclass(frozen=True, kw_only=True)
class DriftOptions:
    """How a check is made (the defaults are the documented ones)."""

    window: timedelta = DEFAULT_WINDOW
    """Production samples received in the last ``window`` before ``now``."""
    random_only: bool = True
    """Only the random slice (see the module docstring); False takes every sample of the window."""
    backbone: str = "tf_efficientnet_lite0"
    """Whose embeddings the MMD compares (a classifier name, or ``run:<id>``)."""
    reference: str | None = None
    """A dataset version to compare with instead of the package's training version."""
    max_samples: int = 300
    """Images per side (reference train images, validation images predicted, production samples)."""
    min_production: int = 20
    """Fewer production samples than this: the report says so and nothing is tested (no alert)."""
    permutations: int = 500
    confidence_test: str = "ks"
    """``ks`` or ``ad`` (see :func:`visionloop.active.drift.two_sample_test`)."""
    seed: int = 0
    compute_embeddings: bool = True
    start_loop: bool = False
    """Ask for a loop cycle when the check alerts (``details.loop_requested``)."""
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    def __post_init__(self) -> None:
        if not 2 <= self.min_production <= self.max_samples:
            raise AnnotationValidationError("drift sample sizes", expected="2 <= min_production <= max_samples",
                                            actual=f"min_production {self.min_production}, max_samples "
                                                   f"{self.max_samples}")
        if self.confidence_test not in ("ks", "ad"):
            raise AnnotationValidationError("drift confidence test", expected="ks or ad",
                                            actual=repr(self.confidence_test))


@dataclass(frozen=True)
class ProductionSample:
    image_id: int
    sha256: str
    model_sha256: str | None
    prediction: dict[str, Any]


def production_samples(project: Project, *, start: datetime, end: datetime, random_only: bool = True,
                       max_samples: int | None = None, seed: int = 0) -> tuple[list[ProductionSample], int]:
    """Production samples received in [start, end] (the random slice only by default) whose image is still in the
    project, an image sent twice counted once (its first sample): at most ``max_samples`` of them chosen at random
    (``seed``), oldest first, and how many the window holds. Only the chosen ones' predictions are read, so a busy
    window costs its ids, not its predictions."""
    where = [ProductionSampleRow.received_at >= start, ProductionSampleRow.received_at <= end,
             ImageRow.deleted_at.is_(None)]
    if random_only:
        where.append(ProductionSampleRow.random_slice.is_(True))
    first = (select(func.min(ProductionSampleRow.id).label("id"))
             .join(ImageRow, ImageRow.id == ProductionSampleRow.image_id)
             .where(*where).group_by(ProductionSampleRow.image_id))
    with project.engine.connect() as conn:
        ids = sorted(conn.execute(first).scalars())
        chosen = _sample(ids, max_samples, seed) if max_samples is not None else ids
        out: list[ProductionSample] = []
        for at in range(0, len(chosen), 500):
            q = (select(ProductionSampleRow.image_id, ImageRow.sha256, ProductionSampleRow.model_sha256,
                        ProductionSampleRow.prediction)
                 .join(ImageRow, ImageRow.id == ProductionSampleRow.image_id)
                 .where(ProductionSampleRow.id.in_(chosen[at:at + 500])).order_by(ProductionSampleRow.id))
            out += [ProductionSample(r.image_id, r.sha256, r.model_sha256, r.prediction or {}) for r in conn.execute(q)]
    return out, len(ids)


# ---- the reference ------------------------------------------------------------------------------------------------


def _sample(items: Sequence[Any], n: int, seed: int) -> list[Any]:
    if len(items) <= n:
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
    return [items[i] for i in keep]


def _cache_path(project: Project, kind: str, *parts: Any) -> Path:
    key = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:20]
    return Path(project.root) / DRIFT_DIR / f"{kind}-{key}.json"


def _cached(path: Path, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``make()``'s JSON, kept at ``path`` (written atomically; the folder keeps :data:`CACHE_FILES` files)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)
    files = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[CACHE_FILES:]:
        old.unlink(missing_ok=True)
    return value


def _stats_of(project: Project, shas: Sequence[str]) -> tuple[np.ndarray, int]:
    """(N, 3) size, brightness, blur of the readable images, and how many could not be read."""
    rows, failed = [], 0
    for sha in shas:
        try:
            rows.append(image_stats(project.blobs.read(sha), max_pixels=project.settings.max_image_pixels).values())
        except (ImageError, FileNotFoundError):
            failed += 1
    return np.asarray(rows, np.float64).reshape(-1, len(IMAGE_STATS)), failed


def _stats_json(project: Project, shas: Sequence[str]) -> dict[str, Any]:
    values, failed = _stats_of(project, shas)
    return {"values": values.tolist(), "failed": failed}


def _reference_predictions(project: Project, package: Path, manifest: Manifest, version: str,
                           options: DriftOptions) -> dict[str, Any]:
    """The model's confidences and class counts on the reference version's validation split (else test), cached."""
    from visionloop.inference import Predictor

    split = next((s for s in ("val", "test") if get_version(project, version).splits.get(s)), None)
    if split is None:
        return {"split": None, "confidences": [], "classes": {}, "images": 0}
    model_key = manifest.model_sha256 or str(package.resolve())

    def make() -> dict[str, Any]:
        items = _sample(version_items(project, version, split=split), options.max_samples, options.seed)
        confidences: list[float] = []
        counts: dict[str, int] = {}
        with Predictor(package, max_pixels=project.settings.max_image_pixels, sessions=1) as predictor:
            for start in range(0, len(items), 8):
                chunk = [project.blobs.read(it.image.sha256) for it in items[start:start + 8]]
                for pred in predictor.predict_chunk(chunk):
                    if isinstance(pred, ImageError):
                        continue
                    conf, classes = prediction_summary(pred.to_json())
                    if conf is not None:
                        confidences.append(conf)
                    for c in classes:
                        counts[str(c)] = counts.get(str(c), 0) + 1
        return {"split": split, "confidences": confidences, "classes": counts, "images": len(items)}

    return _cached(_cache_path(project, "predictions", model_key, version, split, options.max_samples, options.seed),
                   make)


# ---- embeddings ---------------------------------------------------------------------------------------------------


def _embeddings(project: Project, ids: dict[int, str], options: DriftOptions) -> dict[int, np.ndarray]:
    """The stored whole-image embedding of each image of ``ids`` (id -> sha256), computing the missing ones."""
    key = backbone_key(options.backbone)
    store = EmbeddingSet(project.root, key, "images")
    have = store.positions(ids)
    missing = [i for i in ids if i not in have]
    if missing:
        if not options.compute_embeddings:
            raise EmbeddingsMissingError(project.name, key, hint=(
                f"{len(missing)} images of the check have none: run `visionloop embed {project.root} --backbone "
                f"{options.backbone}` first (or let the check compute them)"))
        _embed(project, store, {i: ids[i] for i in missing}, options)
        store = EmbeddingSet(project.root, key, "images")
        have = store.positions(ids)
    vectors = store.vectors()
    return {i: np.asarray(vectors[p], np.float32) for i, p in have.items()}


def _embed(project: Project, store: EmbeddingSet, ids: dict[int, str], options: DriftOptions) -> None:
    """Embed the images ``ids`` (id -> sha256) and add them to ``store`` (unreadable images are left out)."""
    from visionloop.core.imageio import decode
    from visionloop.models.embed import load_embedder

    embedder = load_embedder(options.backbone, project=project)
    store.start(backbone=embedder.backbone, preprocess=embedder.preprocess.to_json(), dim=embedder.dim)
    side = max(embedder.preprocess.size)
    todo = list(ids.items())
    for start in range(0, len(todo), 32):
        inputs, done = [], []
        for image_id, sha in todo[start:start + 32]:
            try:
                im = decode(project.blobs.source(sha), max_pixels=project.settings.max_image_pixels, draft=(side, side))
            except (ImageError, FileNotFoundError):
                continue
            inputs.append(embedder.preprocess(im))
            done.append(image_id)
        store.append(embedder.embed_arrays(inputs), EmbeddingRows.images(done))
    if len((store.manifest() or {}).get("shards", [])) > 8:
        store.compact()


# ---- the check ----------------------------------------------------------------------------------------------------


def _class_counts(counts: dict[str, int], class_ids: Sequence[int]) -> np.ndarray:
    return np.asarray([counts.get(str(c), 0) for c in class_ids], np.float64)


def _alerts(report: dict[str, Any], t: DriftThresholds) -> list[str]:
    """Names of the statistics that crossed their threshold."""
    out = []
    if report.get("mmd_p") is not None and report["mmd_p"] < t.mmd_p:
        out.append("mmd")
    if report.get("confidence_p") is not None and report["confidence_p"] < t.confidence_p:
        out.append("confidence")
    if report.get("psi") is not None and report["psi"] > t.psi and report["classes_p"] < t.histogram_p:
        out.append("classes")
    for name, c in report["image_stats"].items():
        if c["psi"] > t.image_psi and c["p"] < t.histogram_p:
            out.append(name)
    return out


def _train_items(project: Project, package: Path, manifest: Manifest, options: DriftOptions) -> tuple[str, list[Any]]:
    """The reference version's name and its train items."""
    version = options.reference or manifest.dataset_version
    if not version:
        raise ConflictError(f"package {package.name} names no dataset version: give the version to compare with "
                            "(--reference VERSION)")
    try:
        train = version_items(project, version, split="train")
    except NotFoundError:
        raise ConflictError(f"package {package.name} was trained on version {version!r}, which is not in project "
                            f"{project.name}: give a version of this project to compare with (--reference VERSION)"
                            ) from None
    if not train:
        raise ConflictError(f"version {version!r} has no train images to compare production with")
    return version, train


def _compare_embeddings(project: Project, reference: Sequence[Any], production: Sequence[ProductionSample],
                        options: DriftOptions, values: dict[str, Any], details: dict[str, Any]) -> None:
    ids = {it.image.id: it.image.sha256 for it in reference} | {s.image_id: s.sha256 for s in production}
    vectors = _embeddings(project, ids, options)
    x = np.stack([vectors[it.image.id] for it in reference if it.image.id in vectors])
    y = np.stack([vectors[s.image_id] for s in production if s.image_id in vectors])
    mmd = mmd_test(x, y, permutations=options.permutations, max_samples=options.max_samples, seed=options.seed)
    values.update(mmd=mmd.mmd, mmd_p=mmd.p)
    details["mmd"] = mmd.to_json()


def _compare_predictions(project: Project, package: Path, manifest: Manifest, version: str,
                         production: Sequence[ProductionSample], options: DriftOptions, values: dict[str, Any],
                         details: dict[str, Any]) -> None:
    """Confidences (two-sample test) and predicted classes (PSI, chi-square) of the model on the reference's
    validation split vs what the server answered (samples of this model only)."""
    ref_pred = _reference_predictions(project, package, manifest, version, options)
    same_model = [s for s in production if s.model_sha256 in (None, manifest.model_sha256)]
    details["other_model_samples"] = len(production) - len(same_model)
    prod_conf: list[float] = []
    prod_counts: dict[str, int] = {}
    for s in same_model:
        conf, classes = prediction_summary(s.prediction)
        if conf is not None:
            prod_conf.append(conf)
        for c in classes:
            prod_counts[str(c)] = prod_counts.get(str(c), 0) + 1
    details["confidence_split"] = ref_pred["split"]
    ref_conf = ref_pred["confidences"]
    if len(ref_conf) >= 2 and len(prod_conf) >= 2:
        test = two_sample_test(ref_conf, prod_conf, method=options.confidence_test)
        values.update(confidence_stat=test.stat, confidence_p=test.p)
        details["confidence"] = {**test.to_json(), "n_reference": len(ref_conf), "n_production": len(prod_conf),
                                 "reference_mean": float(np.mean(ref_conf)), "production_mean": float(np.mean(prod_conf))}
    class_ids = [c.id for c in manifest.classes]
    ref_hist, prod_hist = _class_counts(ref_pred["classes"], class_ids), _class_counts(prod_counts, class_ids)
    details["classes"] = {"names": manifest.class_names, "reference": ref_hist.tolist(),
                          "production": prod_hist.tolist()}
    if ref_hist.sum() > 0 and prod_hist.sum() > 0:
        values["psi"] = psi(ref_hist, prod_hist, floor=None)
        details["classes"]["p"] = class_counts_test(ref_hist, prod_hist).p


def _compare_image_stats(project: Project, version: str, reference: Sequence[Any],
                         production: Sequence[ProductionSample], options: DriftOptions, values: dict[str, Any],
                         details: dict[str, Any]) -> None:
    ref_stats = _cached(_cache_path(project, "image-stats", version, options.max_samples, options.seed),
                        lambda: _stats_json(project, [it.image.sha256 for it in reference]))
    prod_stats, failed = _stats_of(project, [s.sha256 for s in production])
    details["unreadable_production_images"] = failed
    ref_arr = np.asarray(ref_stats["values"], np.float64).reshape(-1, len(IMAGE_STATS))
    if len(ref_arr) >= 2 and len(prod_stats) >= 2:
        for j, name in enumerate(IMAGE_STATS):
            values["image_stats"][name] = compare_values(ref_arr[:, j], prod_stats[:, j]).to_json()


def _store(project: Project, report: DriftReport) -> int:
    """Write the report, and its ``drift.alert`` event when it alerts, in one transaction; returns its id."""
    with project.transaction() as conn:
        report_id = add_drift_report(conn, report)
        if report.alert:
            emit_event(conn, EventKind.DRIFT_ALERT, {
                "project": project.name, "report": report_id, "model": report.model, "reference": report.reference,
                "alerts": report.details["alerts"], "mmd_p": report.mmd_p, "confidence_p": report.confidence_p,
                "psi": report.psi, "n_production": report.n_production,
                "window_start": report.window_start.isoformat(), "window_end": report.window_end.isoformat(),
                "loop_requested": report.details["loop_requested"],
                "links": {"reports": api_path(project.name, "drift"), "metrics": api_path(project.name, "metrics")}})
    return report_id


def check_drift(project: Project, package: str | Path, *, options: DriftOptions | None = None,
                now: datetime | None = None, package_name: str | None = None,
                progress: Progress | None = None) -> DriftReport:
    """Compare the production samples of the window ending ``now`` (default: the current time) with the reference
    of ``package`` (a package folder or archive; ``package_name``: how the report names it, default the folder's
    name), write the report (and the ``drift.alert`` event when it alerts) and return it.

    Raises :class:`~visionloop.core.errors.ConflictError` when the package names no dataset version of the project
    and no ``reference`` is given, or the version has no train images."""
    options = options or DriftOptions()
    say = progress or (lambda fraction, message: None)
    end = (now or datetime.now(UTC)).astimezone(UTC)
    start = end - options.window
    package = Path(package)
    manifest = load_package(package).manifest
    version, train = _train_items(project, package, manifest, options)
    reference = _sample(train, options.max_samples, options.seed)
    production, in_window = production_samples(project, start=start, end=end, random_only=options.random_only,
                                               max_samples=options.max_samples, seed=options.seed + 1)
    details: dict[str, Any] = {
        "thresholds": options.thresholds.to_json(), "random_only": options.random_only, "backbone": options.backbone,
        "model_sha256": manifest.model_sha256, "samples_in_window": in_window, "alerts": [],
        "max_samples": options.max_samples, "seed": options.seed}
    values: dict[str, Any] = {"image_stats": {}}
    if len(production) < options.min_production:
        details["note"] = (f"{len(production)} production samples in the window"
                           f"{' (random slice)' if options.random_only else ''}; at least {options.min_production} "
                           "are needed to test anything: widen the window or wait for more")
    else:
        say(0.05, "embeddings")
        _compare_embeddings(project, reference, production, options, values, details)
        say(0.4, "reference predictions")
        _compare_predictions(project, package, manifest, version, production, options, values, details)
        say(0.7, "image statistics")
        _compare_image_stats(project, version, reference, production, options, values, details)
        details["alerts"] = _alerts({**values, "classes_p": details["classes"].get("p", 1.0)}, options.thresholds)
    alert = bool(details["alerts"])
    details["loop_requested"] = alert and options.start_loop
    report_id = _store(project, DriftReport(
        model=package_name or package.name, reference=version, window_start=start, window_end=end,
        n_production=len(production), n_reference=len(reference), alert=alert, details=details, **values))
    say(1.0, "done")
    return get_drift_report(project, report_id)
