"""The int8 guard's metric: the package's main metric (:func:`visionloop.evaluation.keys.main_metric`) computed from
runtime predictions by the same evaluation functions that write ``evaluate``'s results and the manifest's metrics:

- classification: ``balanced_accuracy`` (scikit-learn, :func:`~visionloop.evaluation.classification_metrics`)
- tagging: ``mAP`` (scikit-learn average precision, :func:`~visionloop.evaluation.tagging_metrics`)
- detection and instance segmentation: ``map``, COCO mAP@[.5:.95] of boxes, or of masks for instance models
  (pycocotools, :func:`~visionloop.evaluation.detection.coco_scores`)
- semantic segmentation: ``miou`` (:func:`~visionloop.evaluation.detection.semantic_scores`)

Predictions are :class:`~visionloop.inference.Prediction` (project class ids, original pixels); targets are core
annotations in project class ids, aligned with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from visionloop.core.errors import VisionloopError
from visionloop.core.package import Manifest
from visionloop.core.task import Task
from visionloop.evaluation.classification import classification_metrics, tagging_metrics
from visionloop.evaluation.detection import coco_scores, evaluation_ground_truth, semantic_scores, semantic_target
from visionloop.evaluation.keys import main_metric as main_metric_key
from visionloop.inference.results import Prediction

__all__ = ["main_metric"]


def _score_matrix(preds: Sequence[Prediction], index: dict[int, int]) -> np.ndarray:
    out = np.zeros((len(preds), len(index)), np.float64)
    for r, p in enumerate(preds):
        for s in p.scores:
            out[r, index[s.class_id]] = s.score
    return out


def _index_of(class_id: int, index: dict[int, int]) -> int:
    if class_id not in index:
        raise VisionloopError(f"validation class id {class_id} is not one of the package's classes {sorted(index)}")
    return index[class_id]


def main_metric(manifest: Manifest, preds: Sequence[Prediction], targets: Sequence[Any], *,
                max_dets: int = 100) -> tuple[str, float]:
    """(key, value) of the package's main metric on aligned predictions and targets.

    Classification and tagging predictions must carry every class's score (``Predictor(top_k=len(classes))``);
    detection predictions every detection the model keeps (``score_threshold=0``), as evaluation scores them.
    """
    if len(preds) != len(targets) or not preds:
        raise VisionloopError(f"need aligned, non-empty predictions and targets (got {len(preds)} and {len(targets)})")
    semantic = manifest.output_kind == "semantic_map"
    key = main_metric_key(manifest.task, semantic=semantic)
    ids, names = [c.id for c in manifest.classes], manifest.class_names
    index = {c: i for i, c in enumerate(ids)}
    if manifest.task == Task.CLASSIFICATION:
        y = np.asarray([_index_of(t.class_id, index) for t in targets], np.int64)
        return key, float(classification_metrics(y, _score_matrix(preds, index), names)[key])
    if manifest.task == Task.TAGGING:
        y = np.zeros((len(targets), len(ids)), np.int8)
        for r, t in enumerate(targets):
            for c in t.class_ids:
                y[r, _index_of(c, index)] = 1
        return key, float(tagging_metrics(y, _score_matrix(preds, index), names)[key])
    if semantic:
        lut = np.full(max(ids) + 1, 255, np.int64)
        lut[ids] = np.arange(len(ids))
        pred_maps = [lut[p.class_map] for p in preds]
        gts = [semantic_target(t, index, p.height, p.width) for t, p in zip(targets, preds, strict=True)]
        return key, float(semantic_scores(gts, pred_maps, num_classes=len(ids), names=names)[key])
    masks = manifest.output_kind == "torchvision_instance_segmentation"
    scores = coco_scores([evaluation_ground_truth(t, ids) for t in targets], [p.to_annotation() for p in preds],
                         sizes=[(p.height, p.width) for p in preds], labels=ids, masks=masks, max_dets=max_dets,
                         names=names)
    return key, float(scores["segm" if masks else "bbox"][key])
