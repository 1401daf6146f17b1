"""``train(project, version=...)``: one entry point for every task.

Classification and tagging are trained here (:mod:`visionloop.training.classify`); detection and segmentation go to
:func:`visionloop.training.detection.train_detection` with the same arguments.
"""

from __future__ import annotations

import json
from typing import Any

from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.storage.events import EventKind, emit_event, model_trained_payload
from visionloop.storage.runs import RunResult, load_config, run_dir
from visionloop.training.classify import ClassifyParams, train_classifier
from visionloop.training.detection import DetectionHParams, train_detection

__all__ = ["train"]


def train(
    project: Any,
    *,
    version: str | None,
    model: str | None = None,
    strategy: str = "auto",
    epochs: int | None = None,
    resume: str | None = None,
    weights: str | None = None,
    seed: int = 0,
    progress: bool = True,
    author: str | None = None,
    **options: Any,
) -> RunResult:
    """Train a model on dataset version ``version`` of ``project``; returns the run id, directory and metrics.

    ``model``: a registry name (default per task). ``strategy``: ``auto``, ``finetune``, ``frozen`` or ``linear``
    (classification/tagging). ``resume``: continue an interrupted run (its config wins over the other arguments).
    ``weights``: a local checkpoint file to start from instead of the downloaded/offline pretrained weights.
    ``options``: further :class:`visionloop.training.classify.ClassifyParams` fields (``image_size``, ``lr``, ...).

    A run that finishes records one ``model.trained`` event naming ``author`` (who trains; webhooks), none for a
    resumed run that had finished already.
    """
    done_before = resume is not None and _finished(project, resume)
    result = _train(project, version=version, model=model, strategy=strategy, epochs=epochs, resume=resume,
                    weights=weights, seed=seed, progress=progress, **options)
    if not done_before:
        _announce(project, result, author)
    return result


def _finished(project: Any, run_id: str) -> bool:
    try:
        path = run_dir(project, run_id) / "result.json"
    except NotFoundError:
        return False
    return path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("status") == "done"


def _announce(project: Any, result: RunResult, author: str | None) -> None:
    """The ``model.trained`` event of a finished run: its model, version and validation numbers."""
    cfg = load_config(project, result.run_id)
    metrics = result.metrics.get("val") if isinstance(result.metrics.get("val"), dict) else result.metrics
    payload = model_trained_payload(project.name, run=result.run_id, task=cfg.task, model=str(cfg.model.get("name")),
                                    version=cfg.version.get("name"), metrics=metrics, by=author)
    with project.transaction() as conn:
        emit_event(conn, EventKind.MODEL_TRAINED, payload)


def _train(project: Any, *, version: str | None, model: str | None, strategy: str, epochs: int | None,
           resume: str | None, weights: str | None, seed: int, progress: bool, **options: Any) -> RunResult:
    task = project.task.value
    if task in ("detection", "segmentation"):
        if strategy != "auto":
            raise ConflictError(f"--strategy {strategy} only applies to classification and tagging; detectors and "
                                "segmenters are always fine-tuned end to end: drop --strategy")
        hparams, pretrained = _detection_options(options)
        return train_detection(project, version=version, model=model, epochs=epochs, resume=resume, weights=weights,
                               seed=seed, progress=progress, hparams=hparams, pretrained=pretrained)
    log = options.pop("log", None)
    params = ClassifyParams(strategy=strategy, epochs=epochs, weights=weights, **options)
    if model is not None:
        params.model = model
    return train_classifier(project, version=version, params=params, resume=resume, seed=seed, progress=progress,
                            **({"log": log} if log else {}))


def _detection_options(options: dict[str, Any]) -> tuple[Any, str | None]:
    """The CLI's shared options for a detector/segmenter: ``image_size`` (evaluation shorter side; training sizes
    around it), ``batch_size``, ``lr`` (the optimizer's step learning rate) and ``pretrained=False``. Options that
    only classification has are refused rather than ignored."""
    options = {k: v for k, v in options.items() if k != "log"}
    pretrained = None if options.pop("pretrained", True) else "none"
    unknown = sorted(set(options) - {"image_size", "batch_size", "lr"})
    if unknown:
        raise ConflictError(f"{', '.join(unknown)} only apply to classification and tagging; drop them for detection "
                            "and segmentation")
    hp = DetectionHParams()
    if options.get("batch_size"):
        hp.batch_size = int(options["batch_size"])
    if options.get("lr"):
        hp.lr = float(options["lr"]) / hp.batch_size
    if options.get("image_size"):
        hp.eval_size = int(options["image_size"])
    hp.extra["set_by_user"] = sorted({"batch_size": "batch_size", "lr": "lr", "image_size": "eval_size"}[k]
                                     for k, v in options.items() if v)
    return hp, pretrained
