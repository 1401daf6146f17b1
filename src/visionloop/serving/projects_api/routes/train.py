"""What a training run can be started with: the task's default model and strategy, the models of the registry for
the task, and what ``auto`` chooses on the version and why (the same functions ``visionloop train`` and
``visionloop models`` use).

The registry and the trainers import torch: this route loads it into the server process on its first call (once;
the answer per task is cached), never at import.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query

from visionloop.core.task import Task
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.job_schemas import TrainOptionsPublic
from visionloop.storage.project import Project
from visionloop.storage.versions import get_version, version_items

__all__ = ["router", "train_options"]

router = APIRouter(prefix="/projects/{project}/train", tags=["runs"], responses=ERROR_RESPONSES)

_AUTO_EPOCHS = 10
"""Epochs ``auto`` plans a fine-tuned classifier with (``training.classify``: ``params.epochs or 10``)."""


@functools.cache
def _models(task: str) -> tuple[dict[str, Any], ...]:
    from visionloop.models.registry import list_specs

    return tuple({"name": s.name, "kind": s.kind, "library": s.library, "description": s.description,
                  "input_size": s.input_size,
                  "offline_pretrained": s.offline_pretrained} for s in list_specs(task=task))


def _segmentation_kind(project: Project, version: str | None) -> str:
    from visionloop.training.detection import dataset_kind

    if version is None:
        return "instance"
    items = version_items(project, version, split="train")
    return dataset_kind(Task.SEGMENTATION, [it.annotation for it in items if it.annotation is not None])


def train_options(project: Project, version: str | None) -> dict[str, Any]:
    """The answer of ``GET .../train/options``."""
    task = project.task
    n_train = get_version(project, version).splits.get("train", 0) if version else None
    if task in (Task.CLASSIFICATION, Task.TAGGING):
        from visionloop.models.classifier import DEFAULT_MODEL
        from visionloop.training.strategies import STRATEGIES, choose_strategy

        choice = choose_strategy("auto", n_train=n_train if n_train is not None else 0, epochs=_AUTO_EPOCHS,
                                 device="cpu")
        reason = choice.reason
        if choice.strategy == "linear" and n_train is not None and n_train >= 300:
            reason += ("; at the start of training the step time is measured, and fine-tuning is chosen instead "
                       "when it fits the time budget")
        return {"task": task.value, "version": version, "default_model": DEFAULT_MODEL,
                "models": [{k: v for k, v in m.items() if k != "kind"} for m in _models(task.value)],
                "strategies": list(STRATEGIES),
                "auto": {"strategy": choice.strategy, "reason": reason,
                         "epochs": 1 if choice.strategy == "linear" else _AUTO_EPOCHS},
                "training_images": n_train}
    from visionloop.training.detection import DEFAULT_MODELS, auto_epochs, auto_sizes
    from visionloop.training.semantic import SEMANTIC_HPARAMS

    kind = "detection" if task == Task.DETECTION else _segmentation_kind(project, version)
    models = [{k: v for k, v in m.items() if k != "kind"} for m in _models(task.value) if m["kind"] == kind]
    reason = f"detectors and segmenters are fine-tuned end to end ({kind})"
    auto: dict[str, Any] = {"strategy": "full", "reason": reason}
    if kind == "semantic":
        auto["epochs"] = SEMANTIC_HPARAMS["epochs"]
        auto["reason"] += "; the input size is chosen from the regions' sizes when training starts"
    elif version is not None:
        items = [it for it in version_items(project, version, split="train") if it.annotation is not None]
        auto["epochs"], epochs_reason = auto_epochs(len(items))
        names = {c.id: c.name for c in project.ontology().active}
        auto["image_size"], size_reason = auto_sizes(items, names)
        auto["reason"] += f"; {epochs_reason}; {auto['image_size']} px input: {size_reason}"
    return {"task": task.value, "version": version, "default_model": DEFAULT_MODELS[kind], "models": models,
            "strategies": [], "auto": auto, "training_images": n_train}


@router.get("/options", response_model=TrainOptionsPublic,
            summary="Default model and strategy of the task, its models, and what auto chooses on a version and why")
def get_train_options(
    project: ProjectDep,
    version: Annotated[str | None, Query(description="Dataset version the run would train on.")] = None,
) -> dict[str, Any]:
    return train_options(project, version)
