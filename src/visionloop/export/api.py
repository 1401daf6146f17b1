"""``export_run``: a training run of a project -> a model package (ONNX, optionally static int8 with the guard)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from visionloop.core.errors import VisionloopError
from visionloop.core.package import Package, load_package
from visionloop.core.preprocess import Preprocess
from visionloop.core.task import Task
from visionloop.evaluation.detection_run import run_thresholds
from visionloop.evaluation.detection_thresholds import DEFAULT_DETECTION_SCORE
from visionloop.evaluation.keys import main_metric, split_key
from visionloop.export.onnx_export import build_manifest, export_model, graph_layout, is_torchvision_detector
from visionloop.export.quantize import AccuracyDropError, Int8Options
from visionloop.inference.torch_predictor import TorchPredictor
from visionloop.models.runs import load_run
from visionloop.storage import Project
from visionloop.storage.runs import run_dir
from visionloop.storage.versions import get_version, version_items

__all__ = ["GUARD_FILE", "export_run", "run_package_fields", "run_predictor"]

GUARD_FILE = "int8-guard.json"
"""What the int8 guard measured at the last ``export --int8`` of a run, written or refused (in the run directory)."""


def _config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _numeric(d: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def run_package_fields(project: Any, run_id: str, model: Any, cfg: Any) -> dict[str, Any]:
    """Manifest fields from a run: preprocessing, thresholds, metrics, dataset version, config hash.

    Detection and instance segmentation packages get the run's per-class score thresholds chosen on the validation
    split (``thresholds["per_class"]``, project class id -> score; computed now if ``evaluate`` has not yet);
    ``main_metric`` is ``val_<key>`` of :func:`visionloop.evaluation.keys.main_metric`.
    """
    directory = run_dir(project, cfg.run_id)
    task = Task(cfg.task)
    pp = cfg.preprocessing()
    if is_torchvision_detector(model) and (pp.extra.get("detector_normalises") or pp.mean != (0.0, 0.0, 0.0)):
        # torchvision detectors normalise inside the graph (GeneralizedRCNNTransform): they take 0..1 pixels
        pp = Preprocess(size=pp.size, resize=pp.resize, crop_fraction=pp.crop_fraction, mean=(0.0, 0.0, 0.0),
                        std=(1.0, 1.0, 1.0), interpolation=pp.interpolation, intensity=pp.intensity,
                        extra={**pp.extra, "detector_normalises": True, "model_mean": list(pp.mean),
                               "model_std": list(pp.std)})
    thresholds: dict[str, Any] = {}
    if task == Task.TAGGING and cfg.thresholds:
        thresholds["per_class"] = {int(c["id"]): float(t) for c, t in zip(cfg.classes, cfg.thresholds, strict=True)}
    semantic = task == Task.SEGMENTATION and cfg.extra.get("kind") == "semantic"
    if task in (Task.DETECTION, Task.SEGMENTATION) and is_torchvision_detector(model):
        chosen = run_thresholds(project, cfg, model, get_version(project, cfg.version["name"]))
        thresholds["score"] = DEFAULT_DETECTION_SCORE
        thresholds["per_class"] = {int(c["id"]): float(chosen["by_label"].get(i + 1, DEFAULT_DETECTION_SCORE))
                                   for i, c in enumerate(cfg.classes)}
    metrics: dict[str, float] = {}
    result = directory / "result.json"
    if result.exists():  # detection: {"metrics": {"val_map": ...}}; classification/tagging: {"val": {"mAP": ...}}
        data = json.loads(result.read_text())
        metrics = _numeric(data.get("metrics", data) if isinstance(data.get("metrics", data), dict) else {})
        if isinstance(data.get("val"), dict):
            metrics.update({split_key("val", k): v for k, v in _numeric(data["val"]).items()})
    for split in ("test", "val"):
        ev = directory / f"eval-{split}.json"
        if ev.exists():
            data = json.loads(ev.read_text())
            metrics.update({split_key(split, k): v for k, v in _numeric(data.get("metrics", data)).items()})
    main = split_key("val", main_metric(task, semantic=semantic))
    version = cfg.version or {}
    return {
        "preprocess": pp, "thresholds": thresholds, "metrics": metrics,
        "main_metric": main if main in metrics else None, "dataset_version": version.get("name"),
        "dataset_hash": version.get("hash"), "config_hash": _config_hash(cfg.to_json()), "run_id": cfg.run_id,
        "architecture": (cfg.model or {}).get("name"), "classes": [(int(c["id"]), str(c["name"])) for c in cfg.classes],
        "semantic": semantic if task == Task.SEGMENTATION else None,
    }


def run_predictor(project: Any, run_id: str, **kwargs: Any) -> TorchPredictor:
    """A training run as a predictor: its PyTorch model behind the very manifest its package would carry
    (preprocessing, validation thresholds, decoding), so ``visionloop predict`` on a run answers in the one prediction
    schema, exactly as ``predict-package`` on its export. ``kwargs`` go to the Predictor (``score_threshold``...)."""
    model, cfg = load_run(project, run_id)
    fields = run_package_fields(project, run_id, model, cfg)
    semantic = fields.pop("semantic")
    layout = graph_layout(model, task=cfg.task, preprocess=fields["preprocess"], semantic=semantic,
                          n_classes=len(cfg.classes))
    manifest = build_manifest(layout, task=cfg.task, name=cfg.run_id, **fields)
    return TorchPredictor(model, Package(path=run_dir(project, cfg.run_id), manifest=manifest, model_bytes=b""),
                          **kwargs)


def export_run(
    project: Any, run_id: str, out: str | Path, *, int8: bool = False, force: bool = False, max_drop: float = 0.01,
    name: str | None = None, max_calibration_images: int = 128, max_validation_images: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Export run ``run_id`` (or ``"latest"``) of ``project`` (a Project or its directory) as a package at ``out``.

    ``int8``: static QDQ int8 calibrated on the version's training images, checked on its validation split; raises
    :class:`~visionloop.export.quantize.AccuracyDropError` when the main metric drops by more than ``max_drop``
    unless ``force`` (the loss is then recorded in the manifest and model card). Either way what the guard measured
    is written to the run's ``int8-guard.json`` with the outcome (``written`` or ``refused``).
    """
    own = not hasattr(project, "engine")
    proj = Project.open(project) if own else project
    try:
        model, cfg = load_run(proj, run_id)
        fields = run_package_fields(proj, run_id, model, cfg)
        options = None
        if int8:
            options = _int8_options(proj, cfg, max_drop=max_drop, force=force, max_calibration=max_calibration_images,
                                    max_validation=max_validation_images)
        try:
            path = export_model(
                model, task=cfg.task, out=out, name=name or f"{Path(str(proj.root)).name}-{cfg.run_id}", int8=options,
                overwrite=overwrite, **fields,
            )
        except AccuracyDropError as e:
            _record_guard(proj, cfg, e.record, outcome="refused", package=None)
            raise
        if options is not None:
            _record_guard(proj, cfg, load_package(path).manifest.int8, outcome="written", package=path)
        return path
    finally:
        if own:
            proj.close()


def _int8_options(project: Any, cfg: Any, *, max_drop: float, force: bool, max_calibration: int,
                  max_validation: int | None) -> Any:
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
    return Int8Options(calibration=calibration, validation=validation, max_drop=max_drop, force=force,
                       max_dets=int(cfg.extra.get("max_dets", 100)))


def _record_guard(project: Any, cfg: Any, record: Any, *, outcome: str, package: Path | None) -> None:
    data = {"outcome": outcome, "package": str(package) if package else None,
            **(asdict(record) if record is not None else {})}
    (run_dir(project, cfg.run_id) / GUARD_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
