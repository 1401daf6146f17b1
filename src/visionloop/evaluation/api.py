"""``evaluate_run(project, run_id, split=...)``: score a trained run on a split of its dataset version.

Classification and tagging are handled here; detection and segmentation runs go to
:func:`visionloop.evaluation.detection_run.evaluate_run`. The result is a dict (what ``visionloop evaluate --json``
prints), also written to ``runs/<id>/eval-<split>.json``, and a ``report.html`` beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.errors import ConflictError
from visionloop.data.augment import eval_transform
from visionloop.data.cache import ImageCache
from visionloop.data.datasets import ImageDataset, labelled_items
from visionloop.evaluation.classification import classification_metrics, tagging_metrics
from visionloop.evaluation.detection_run import evaluate_run as evaluate_detection
from visionloop.evaluation.keys import main_metric
from visionloop.evaluation.report_classification import write_classification_report
from visionloop.models.predict import predict_arrays
from visionloop.models.runs import load_run
from visionloop.storage.runs import load_config, read_metrics, resolve_run, run_dir
from visionloop.storage.versions import get_version, version_items

__all__ = ["error_table", "evaluate_run"]


def error_table(*, task: str, y: np.ndarray, probs: np.ndarray, names: list[str], image_ids: list[int],
                image_names: list[str], shas: list[str], thresholds: list[float] | None = None) -> list[dict[str, Any]]:
    """Every wrongly predicted image, worst first.

    Classification: true/predicted class with their probabilities; worst = most confident wrong prediction.
    Tagging: missing and extra tags with scores; worst = largest distance of a wrong score from its threshold.
    """
    rows: list[dict[str, Any]] = []
    if task == "classification":
        pred = probs.argmax(axis=1)
        for i in np.flatnonzero(pred != y):
            rows.append({"image_id": image_ids[i], "name": image_names[i], "sha256": shas[i],
                         "true": names[int(y[i])], "predicted": names[int(pred[i])],
                         "p_predicted": float(probs[i, pred[i]]), "p_true": float(probs[i, int(y[i])]),
                         "severity": float(probs[i, pred[i]] - probs[i, int(y[i])])})
    else:
        th = np.asarray(thresholds if thresholds is not None else [0.5] * len(names))
        pred = probs >= th[None, :]
        truth = y > 0.5
        for i in np.flatnonzero((pred != truth).any(axis=1)):
            missing = [k for k in range(len(names)) if truth[i, k] and not pred[i, k]]
            extra = [k for k in range(len(names)) if pred[i, k] and not truth[i, k]]
            sev = max(abs(float(probs[i, k] - th[k])) for k in missing + extra)
            rows.append({"image_id": image_ids[i], "name": image_names[i], "sha256": shas[i],
                         "true": [names[k] for k in np.flatnonzero(truth[i])],
                         "missing": {names[k]: float(probs[i, k]) for k in missing},
                         "extra": {names[k]: float(probs[i, k]) for k in extra}, "severity": sev})
    rows.sort(key=lambda r: -r["severity"])
    return rows


def evaluate_run(project: Any, run_id: str, *, split: str = "test", report: bool = True,
                 device: str = "cpu") -> dict[str, Any]:
    """Metrics of run ``run_id`` on ``split`` (``train``, ``val`` or ``test``) of the run's dataset version.

    Returns at least ``accuracy``, ``balanced_accuracy``, ``per_class`` and for tagging ``mAP``, plus ``top1``,
    ``top5``, ``ece``, ``confusion_matrix``, ``errors`` (worst 100) and ``report`` (path of report.html).
    """
    rid = resolve_run(project, run_id)
    cfg = load_config(project, rid)
    if cfg.task in ("detection", "segmentation"):
        return evaluate_detection(project, rid, split=split)
    model, cfg = load_run(project, rid, device=device)
    vname = cfg.version["name"]
    info = get_version(project, vname)
    warnings = []
    if info.hash != cfg.version.get("hash"):
        warnings.append(f"version {vname} now has hash {info.hash[:12]}, the run trained on {cfg.version['hash'][:12]}")
    items = version_items(project, vname, split=split)
    data = labelled_items(items, task=cfg.task, class_ids=cfg.class_ids)
    if len(data) == 0:
        raise ConflictError(f"split {split!r} of version {vname} has no labelled images; evaluate on another split "
                            "(--split val|test|train)")
    preprocess = cfg.preprocessing()
    cache = ImageCache(project.blobs, preprocess=preprocess)
    ds = ImageDataset(data, cache=cache, transform=eval_transform(preprocess), kind="eval")
    probs, y = predict_arrays(model, ds, task=cfg.task, device=device)
    names = cfg.class_names
    if cfg.task == "classification":
        metrics = classification_metrics(y, probs, names)
    else:
        metrics = tagging_metrics(y, probs, names, thresholds=cfg.thresholds)
    errors = error_table(task=cfg.task, y=y, probs=probs, names=names, image_ids=data.image_ids,
                         image_names=data.names, shas=data.shas, thresholds=cfg.thresholds)
    directory = run_dir(project, rid)
    out: dict[str, Any] = {"run": rid, "split": split, "version": cfg.version, **metrics,
                           "main_metric": main_metric(cfg.task), "n_errors": len(errors),
                           "errors": errors[:100], "warnings": warnings}
    if report:
        out["report"] = str(write_classification_report(project, cfg, directory, out, errors=errors,
                                                        records=read_metrics(directory)))
    (Path(directory) / f"eval-{split}.json").write_text(json.dumps(out, indent=1, default=str) + "\n",
                                                        encoding="utf-8")
    return out
