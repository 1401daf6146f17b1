"""Metric names, defined once. Evaluation results (``evaluate --json``), training logs (``val_<key>``), package
manifests (``metrics``, ``main_metric``) and the int8 guard all use these keys, each named for what it holds."""

from __future__ import annotations

from visionloop.core.task import Task

__all__ = [
    "BALANCED_ACCURACY",
    "MAP",
    "MAP50",
    "MAP75",
    "MIOU",
    "PIXEL_ACCURACY",
    "TAG_MAP",
    "main_metric",
    "split_key",
]

MAP = "map"
"""COCO mAP@[.5:.95] computed by pycocotools: of the masks for instance segmentation, of the boxes otherwise."""
MAP50 = "map50"
MAP75 = "map75"
MIOU = "miou"
"""Semantic segmentation: mean IoU over the classes present in ground truth or prediction."""
PIXEL_ACCURACY = "pixel_accuracy"
BALANCED_ACCURACY = "balanced_accuracy"
"""Classification: mean per-class recall (scikit-learn)."""
TAG_MAP = "mAP"
"""Tagging: mean over classes (with positives and negatives) of scikit-learn's average precision."""


def main_metric(task: Task | str, *, semantic: bool = False) -> str:
    """The key that ranks models of ``task`` (what training monitors, the manifest names and the int8 guard checks)."""
    task = Task(task)
    if task == Task.CLASSIFICATION:
        return BALANCED_ACCURACY
    if task == Task.TAGGING:
        return TAG_MAP
    return MIOU if semantic else MAP


def split_key(split: str, key: str) -> str:
    """``val_map``, ``test_miou``: a metric measured on a split."""
    return f"{split}_{key}"
