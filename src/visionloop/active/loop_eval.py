"""Champion and challenger measured on the same frozen test split: per-image predictions, the main metric with its
paired bootstrap CI, per-class numbers side by side, and the images that got better or worse.

A run is evaluated on *another* version's split than the one it trained on (the champion trained on an older
version; the test split of the new version holds the old test images and the random slice), so this module predicts
the split itself rather than calling ``evaluate_run`` (which reads the run's own version). A classification run's
predictions are kept per image (:data:`PREDICTIONS_FILE`), so the champion is not predicted again on the same images
at the next cycle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.active.bootstrap import (
    BootstrapResult,
    Scorer,
    classification_scorer,
    detection_scorer,
    paired_bootstrap,
    semantic_scorer,
)
from visionloop.core.errors import ConflictError
from visionloop.storage.runs import load_config, run_dir
from visionloop.storage.versions import get_version, version_items

__all__ = ["Comparison", "ImageChange", "ModelOutputs", "compare_runs", "default_metric", "predict_split"]

DEFAULT_METRICS = {"classification": "accuracy", "detection": "map50", "instance": "map50", "semantic": "miou"}
"""The loop's metric per kind of run: what the bootstrap compares (``accuracy``: the share of test images right;
``map50``: COCO AP at IoU 0.5, steadier than AP@[.5:.95] on small test sets)."""
PREDICTIONS_FILE = "loop-predictions.json"
"""A classification run's predicted class index per image sha256 (``runs/<id>/loop-predictions.json``): a run never
changes, and the champion of a cycle is measured again on mostly the same test images at every cycle."""
MAX_CACHED_PREDICTIONS = 200_000
METRICS = {"classification": ("accuracy", "balanced_accuracy", "macro_f1"), "detection": ("map50", "map"),
           "instance": ("map50", "map"), "semantic": ("miou",)}


@dataclass
class ModelOutputs:
    """One run's predictions on a split: ``truth``/``preds`` aligned with ``image_ids`` (classification: class
    indexes; detection: Boxes/Instances in model labels; semantic: (H, W) class maps)."""

    run_id: str
    kind: str
    image_ids: list[int]
    names: list[str]
    shas: list[str]
    truth: list[Any]
    preds: list[Any]
    class_names: list[str]
    sizes: list[tuple[int, int]] = field(default_factory=list)
    max_dets: int = 100


@dataclass(frozen=True)
class ImageChange:
    """One test image scored by both models (per-image metric: right or wrong, the image's AP or IoU)."""

    image_id: int
    name: str
    sha256: str
    champion: float
    challenger: float
    detail: str = ""

    @property
    def delta(self) -> float:
        return self.challenger - self.champion


@dataclass
class Comparison:
    """The result of :func:`compare_runs`."""

    bootstrap: BootstrapResult
    per_class: dict[str, dict[str, float | None]]
    """class -> {"champion", "challenger"} (recall for classification, AP50 for detection, IoU for semantic)."""
    per_class_metric: str
    better: list[ImageChange]
    """The images that gained the most (at most ``examples``), best first; ``n_better`` counts them all."""
    worse: list[ImageChange]
    images: int
    kind: str
    n_better: int = 0
    n_worse: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"bootstrap": self.bootstrap.to_json(), "per_class": self.per_class,
                "per_class_metric": self.per_class_metric, "images": self.images, "kind": self.kind,
                "n_better": self.n_better, "n_worse": self.n_worse,
                "better": [_change_json(c) for c in self.better], "worse": [_change_json(c) for c in self.worse]}


def _change_json(c: ImageChange) -> dict[str, Any]:
    return {"image_id": c.image_id, "name": c.name, "sha256": c.sha256, "champion": c.champion,
            "challenger": c.challenger, "detail": c.detail}


def _kind(cfg: Any) -> str:
    if cfg.task in ("classification", "tagging"):
        if cfg.task == "tagging":
            raise ConflictError("the loop compares classification, detection and segmentation runs; tagging runs "
                                "are not supported yet: retrain and compare them by hand (visionloop evaluate)")
        return "classification"
    return str(cfg.extra.get("kind", "detection"))


def default_metric(project: Any, run_id: str) -> str:
    """The loop's metric for the run's kind (see :data:`DEFAULT_METRICS`)."""
    return DEFAULT_METRICS[_kind(load_config(project, run_id))]


def predict_split(project: Any, run_id: str, *, version: str, split: str = "test") -> ModelOutputs:
    """The run's predictions of the annotated images of ``split`` of ``version`` (CPU)."""
    from visionloop.models.runs import load_run

    model, cfg = load_run(project, run_id)
    kind = _kind(cfg)
    items = [it for it in version_items(project, version, split=split) if it.annotation is not None]
    if not items:
        raise ConflictError(f"split {split!r} of version {version} has no annotated images to compare the models on; "
                            "create versions with a test split")
    if kind == "classification":
        return _classify(project, model, cfg, items)
    return _detect(project, model, cfg, items, kind=kind, version=version)


def _classify(project: Any, model: Any, cfg: Any, items: Sequence[Any]) -> ModelOutputs:
    from visionloop.data.augment import eval_transform
    from visionloop.data.cache import ImageCache
    from visionloop.data.datasets import ImageDataset, LabelledItems, labelled_items
    from visionloop.models.predict import predict_arrays

    data = labelled_items(items, task=cfg.task, class_ids=cfg.class_ids)
    cache_file = run_dir(project, cfg.run_id) / PREDICTIONS_FILE
    known = _read_cache(cache_file)
    todo = [i for i, sha in enumerate(data.shas) if sha not in known]
    if todo:
        sub = LabelledItems(shas=[data.shas[i] for i in todo], names=[data.names[i] for i in todo],
                            image_ids=[data.image_ids[i] for i in todo], targets=data.targets[todo], skipped={})
        preprocess = cfg.preprocessing()
        ds = ImageDataset(sub, cache=ImageCache(project.blobs, preprocess=preprocess),
                          transform=eval_transform(preprocess), kind="eval")
        probs, _ = predict_arrays(model, ds, task=cfg.task)
        known.update({sha: int(k) for sha, k in zip(sub.shas, probs.argmax(axis=1).tolist(), strict=True)})
        _write_cache(cache_file, known)
    return ModelOutputs(run_id=cfg.run_id, kind="classification", image_ids=list(data.image_ids),
                        names=list(data.names), shas=list(data.shas), truth=[int(v) for v in data.targets],
                        preds=[known[sha] for sha in data.shas], class_names=cfg.class_names)


def _read_cache(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_cache(path: Path, values: dict[str, int]) -> None:
    if len(values) > MAX_CACHED_PREDICTIONS:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(values), encoding="utf-8")
    os.replace(tmp, path)


def _detect(project: Any, model: Any, cfg: Any, items: Sequence[Any], *, kind: str, version: str) -> ModelOutputs:
    from visionloop.data.detection import DetectionDataset, SemanticDataset
    from visionloop.models.predict import predict_dataset

    ontology = get_version(project, version).ontology
    common = {"run_id": cfg.run_id, "kind": kind, "image_ids": [it.image.id for it in items],
              "names": [it.image.name for it in items], "shas": [it.image.sha256 for it in items],
              "class_names": cfg.class_names}
    if kind == "semantic":
        ds = SemanticDataset(items, ontology=ontology, image_source=project.blobs.source,
                             intensity=cfg.preprocessing().intensity)
        size = int(cfg.extra.get("eval_size", 512))
        preds = predict_dataset(model, ds, kind=kind, semantic_size=(size, size),
                                flips=cfg.preprocessing().extra.get("tta_flips", ()))
        truth = [ds.target_mask(i, *p.shape) for i, p in enumerate(preds)]
        return ModelOutputs(truth=truth, preds=preds, **common)
    ds = DetectionDataset(items, ontology=ontology, image_source=project.blobs.source, masks=kind == "instance")
    preds = predict_dataset(model, ds, kind=kind)
    return ModelOutputs(truth=[ds.ground_truth(i) for i in range(len(ds))], preds=preds,
                        sizes=[ds.size(i) for i in range(len(ds))], max_dets=int(cfg.extra.get("max_dets", 100)),
                        **common)


def _scorer(out: ModelOutputs, metric: str) -> Scorer:
    if out.kind == "classification":
        return classification_scorer(out.truth, out.preds, metric=metric)
    if out.kind == "semantic":
        return semantic_scorer(out.truth, out.preds, num_classes=len(out.class_names))
    return detection_scorer(out.truth, out.preds, sizes=out.sizes, labels=list(range(1, len(out.class_names) + 1)),
                            metric=metric, iou_type="segm" if out.kind == "instance" else "bbox",
                            max_dets=out.max_dets)


def _per_image(out: ModelOutputs, scorer: Scorer) -> np.ndarray:
    """Each image's own score: right (1) or wrong (0) for classification, else the metric on that image alone."""
    if out.kind == "classification":
        return (np.asarray(out.truth) == np.asarray(out.preds)).astype(np.float64)
    eye = np.eye(len(out.image_ids), dtype=np.int64)
    return np.asarray([scorer.score(eye[i]) for i in range(len(out.image_ids))])


def _per_class(a: ModelOutputs, b: ModelOutputs) -> tuple[str, dict[str, dict[str, float | None]]]:
    names = a.class_names
    if a.kind == "classification":
        def recall(out: ModelOutputs, k: int) -> float | None:
            y, p = np.asarray(out.truth), np.asarray(out.preds)
            return float((p[y == k] == k).mean()) if (y == k).any() else None

        return "recall", {n: {"champion": recall(a, k), "challenger": recall(b, k)} for k, n in enumerate(names)}
    if a.kind == "semantic":
        def iou(out: ModelOutputs, k: int) -> float | None:
            inter = union = 0
            for t, p in zip(out.truth, out.preds, strict=True):
                valid = t != 255
                gt, pr = (t == k) & valid, (p == k) & valid
                inter += int((gt & pr).sum())
                union += int((gt | pr).sum())
            return inter / union if union else None

        return "iou", {n: {"champion": iou(a, k), "challenger": iou(b, k)} for k, n in enumerate(names)}
    from visionloop.evaluation.coco_eval import coco_evaluate, to_coco_json

    def ap50(out: ModelOutputs) -> dict[int, dict[str, float]]:
        iou_type = "segm" if out.kind == "instance" else "bbox"
        labels = list(range(1, len(names) + 1))
        gt, res = to_coco_json(out.truth, out.preds, sizes=out.sizes, labels=labels, iou_type=iou_type)
        return coco_evaluate(gt, res, iou_type=iou_type, max_dets=out.max_dets).per_class

    pa, pb = ap50(a), ap50(b)

    def value(per: dict[int, dict[str, float]], k: int) -> float | None:
        v = per.get(k + 1, {}).get("ap50", -1.0)
        return None if v < 0 else float(v)

    return "ap50", {n: {"champion": value(pa, k), "challenger": value(pb, k)} for k, n in enumerate(names)}


def _detail(out: ModelOutputs, i: int) -> str:
    if out.kind == "classification":
        return out.class_names[int(out.preds[i])]
    return ""


def compare_runs(
    champion: ModelOutputs, challenger: ModelOutputs, *, metric: str, resamples: int = 1000,
    confidence: float = 0.95, seed: int = 0, examples: int = 12,
) -> Comparison:
    """Paired bootstrap of ``challenger - champion`` for ``metric``, per-class numbers, and the ``examples`` images
    that gained and lost the most. Both outputs must cover the same images with the same classes."""
    if champion.image_ids != challenger.image_ids:
        raise ConflictError("the two models were not measured on the same test images; predict both on one split")
    if champion.class_names != challenger.class_names or champion.kind != challenger.kind:
        raise ConflictError(f"champion {champion.run_id} ({champion.kind}: {', '.join(champion.class_names)}) and "
                            f"challenger {challenger.run_id} ({challenger.kind}: {', '.join(challenger.class_names)}) "
                            "do not predict the same classes; the classes changed since the champion was trained: "
                            "train a new champion on the current classes and deploy it")
    if metric not in METRICS[champion.kind]:
        raise ConflictError(f"metric {metric!r} does not apply to {champion.kind} runs; use one of "
                            f"{', '.join(METRICS[champion.kind])}")
    sa, sb = _scorer(champion, metric), _scorer(challenger, metric)
    result = paired_bootstrap(sa, sb, resamples=resamples, confidence=confidence, seed=seed)
    ia, ib = _per_image(champion, sa), _per_image(challenger, sb)
    changes = []
    for i, image_id in enumerate(champion.image_ids):
        if ia[i] == ib[i] or ia[i] < 0 or ib[i] < 0:
            continue
        detail = ""
        if champion.kind == "classification":
            detail = (f"true {champion.class_names[int(champion.truth[i])]}: {_detail(champion, i)} -> "
                      f"{_detail(challenger, i)}")
        changes.append(ImageChange(image_id=image_id, name=champion.names[i], sha256=champion.shas[i],
                                   champion=float(ia[i]), challenger=float(ib[i]), detail=detail))
    better = sorted((c for c in changes if c.delta > 0), key=lambda c: -c.delta)[:examples]
    worse = sorted((c for c in changes if c.delta < 0), key=lambda c: c.delta)[:examples]
    per_metric, per_class = _per_class(champion, challenger)
    return Comparison(bootstrap=result, per_class=per_class, per_class_metric=per_metric, better=better, worse=worse,
                      images=len(champion.image_ids), kind=champion.kind, n_better=sum(c.delta > 0 for c in changes),
                      n_worse=sum(c.delta < 0 for c in changes))
