"""``export_run``: a training run of a project -> a model package (ONNX, optionally static int8 with the guard)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from visionloop.core.errors import VisionloopError
from visionloop.core.preprocess import Preprocess
from visionloop.core.task import Task

__all__ = ["DEFAULT_DETECTION_SCORE", "export_run", "run_package_fields"]

DEFAULT_DETECTION_SCORE = 0.3
"""Score threshold a detection package applies when the run chose none (the same default as training's predict)."""


def _config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _numeric(d: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def run_package_fields(project: Any, run_id: str, model: Any, cfg: Any) -> dict[str, Any]:
    """Manifest fields from a run: preprocessing, thresholds, metrics, dataset version, config hash."""
    from visionloop.export.onnx_export import is_torchvision_detector
    from visionloop.storage.runs import run_dir

    directory = run_dir(project, cfg.run_id)
    task = Task(cfg.task)
    pp = cfg.preprocessing()
    if is_torchvision_detector(model) and (pp.extra.get("detector_normalises") or pp.mean != (0.0, 0.0, 0.0)):
        # torchvision detectors normalise inside the graph (GeneralizedRCNNTransform): they take 0..1 pixels
        pp = Preprocess(size=pp.size, resize=pp.resize, crop_fraction=pp.crop_fraction, mean=(0.0, 0.0, 0.0),
                        std=(1.0, 1.0, 1.0), interpolation=pp.interpolation,
                        extra={**pp.extra, "detector_normalises": True, "model_mean": list(pp.mean),
                               "model_std": list(pp.std)})
    thresholds: dict[str, Any] = {}
    if task == Task.TAGGING and cfg.thresholds:
        thresholds["per_class"] = {int(c["id"]): float(t) for c, t in zip(cfg.classes, cfg.thresholds, strict=True)}
    if task in (Task.DETECTION, Task.SEGMENTATION) and is_torchvision_detector(model):
        thresholds["score"] = float(cfg.extra.get("score_threshold", DEFAULT_DETECTION_SCORE))
    metrics: dict[str, float] = {}
    result = directory / "result.json"
    if result.exists():
        data = json.loads(result.read_text())
        metrics = _numeric(data.get("metrics", data) if isinstance(data.get("metrics", data), dict) else {})
    for split in ("test", "val"):
        ev = directory / f"eval-{split}.json"
        if ev.exists():
            data = json.loads(ev.read_text())
            metrics.update({f"{split}_{k}": v for k, v in _numeric(data.get("metrics", data)).items()})
    main = {"classification": "val_balanced_accuracy", "tagging": "val_mAP"}.get(str(task), "val_map")
    version = cfg.version or {}
    return {
        "preprocess": pp, "thresholds": thresholds, "metrics": metrics,
        "main_metric": main if main in metrics else None, "dataset_version": version.get("name"),
        "dataset_hash": version.get("hash"), "config_hash": _config_hash(cfg.to_json()), "run_id": cfg.run_id,
        "architecture": (cfg.model or {}).get("name"), "classes": [(int(c["id"]), str(c["name"])) for c in cfg.classes],
        "semantic": cfg.extra.get("kind") == "semantic" if task == Task.SEGMENTATION else None,
    }


def export_run(
    project: Any, run_id: str, out: str | Path, *, int8: bool = False, force: bool = False, max_drop: float = 0.01,
    name: str | None = None, max_calibration_images: int = 128, max_validation_images: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Export run ``run_id`` (or ``"latest"``) of ``project`` (a Project or its directory) as a package at ``out``.

    ``int8``: static QDQ int8 calibrated on the version's training images, checked on its validation split; raises
    :class:`~visionloop.export.quantize.AccuracyDropError` when the main metric drops by more than ``max_drop``
    unless ``force`` (the loss is then recorded in the manifest and model card).
    """
    from visionloop.export.onnx_export import export_model
    from visionloop.models.runs import load_run
    from visionloop.storage import Project

    own = not hasattr(project, "engine")
    proj = Project.open(project) if own else project
    try:
        model, cfg = load_run(proj, run_id)
        fields = run_package_fields(proj, run_id, model, cfg)
        options = None
        if int8:
            options = _int8_options(proj, cfg, max_drop=max_drop, force=force, max_calibration=max_calibration_images,
                                    max_validation=max_validation_images)
        return export_model(
            model, task=cfg.task, out=out, name=name or f"{Path(str(proj.root)).name}-{cfg.run_id}", int8=options,
            overwrite=overwrite, **fields,
        )
    finally:
        if own:
            proj.close()


def _int8_options(project: Any, cfg: Any, *, max_drop: float, force: bool, max_calibration: int,
                  max_validation: int | None) -> Any:
    from visionloop.export.quantize import Int8Options
    from visionloop.storage.versions import version_items

    version = (cfg.version or {}).get("name")
    if not version:
        raise VisionloopError(f"run {cfg.run_id} names no dataset version; int8 needs its training and validation "
                              "splits (export without --int8)")
    train = [it for it in version_items(project, version, split="train")][:max_calibration]
    val = [it for it in version_items(project, version, split="val") if it.annotation is not None]
    if max_validation is not None:
        val = val[:max_validation]
    if not train or not val:
        raise VisionloopError(f"version {version} has {len(train)} training and {len(val)} annotated validation "
                              "images; int8 needs both (export without --int8)")
    calibration = [project.image_bytes(it.image.id) for it in train]
    validation = [(project.image_bytes(it.image.id), it.annotation) for it in val]
    return Int8Options(calibration=calibration, validation=validation, max_drop=max_drop, force=force)
