"""Per-class score thresholds of a detection / instance segmentation run, chosen on its VALIDATION split.

The threshold of a class is the score that maximises F1 at IoU 0.5 on the validation split (see
:func:`visionloop.evaluation.detection.pr_curves`). Choosing it on the split being evaluated would flatter the test
numbers, so evaluation on any split reads the validation thresholds; export writes them into the package
(``manifest.thresholds["per_class"]``), where :class:`~visionloop.inference.Predictor` and the model server use them.

They are kept in ``runs/<id>/thresholds.json`` (``{"split": "val", "source": "validation" | "default",
"version_hash", "images", "by_label": {model label: threshold}}``) and computed once per dataset version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.annotations import boxes_of
from visionloop.evaluation.detection import pr_curves

__all__ = ["DEFAULT_DETECTION_SCORE", "THRESHOLDS_FILE", "operating_point", "thresholds_from_curves",
           "validation_thresholds"]

THRESHOLDS_FILE = "thresholds.json"
DEFAULT_DETECTION_SCORE = 0.3
"""The threshold of every class when the run's version has no annotated validation image."""


def thresholds_from_curves(curves: dict[int, dict[str, Any]]) -> dict[int, float]:
    """Model label -> the F1-best score threshold of its precision-recall curve."""
    return {int(c): float(cur["threshold"]) for c, cur in curves.items()}


def operating_point(curve: dict[str, Any], threshold: float) -> tuple[float, float]:
    """(precision, recall) of one class's curve when detections scored at least ``threshold`` are kept."""
    kept = np.flatnonzero(np.asarray(curve["scores"]) >= threshold)
    if not len(kept):
        return 0.0, 0.0
    k = int(kept[-1])
    return float(curve["precision"][k]), float(curve["recall"][k])


def _read(path: Path, version_hash: str | None) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version_hash") != version_hash:
        return None
    data["by_label"] = {int(k): float(v) for k, v in data["by_label"].items()}
    return data


def validation_thresholds(directory: Path, *, labels: Sequence[int], version_hash: str | None,
                          predict_val: Any) -> dict[str, Any]:
    """The run's validation thresholds: read from ``directory/thresholds.json``, or computed now and saved.

    ``predict_val()`` returns ``(ground truths, predictions)`` (Boxes/Instances, model labels) of the annotated
    validation images; it is called only when no saved thresholds match ``version_hash``.
    """
    path = Path(directory) / THRESHOLDS_FILE
    saved = _read(path, version_hash)
    if saved is not None:
        return saved
    gts, preds = predict_val()
    if len(gts):
        by_label = thresholds_from_curves(pr_curves([boxes_of(g) for g in gts], [boxes_of(p) for p in preds], labels))
        source = "validation"
    else:
        by_label, source = {int(c): DEFAULT_DETECTION_SCORE for c in labels}, "default"
    data = {"split": "val", "source": source, "version_hash": version_hash, "images": len(gts), "by_label": by_label}
    path.write_text(json.dumps({**data, "by_label": {str(k): v for k, v in by_label.items()}}, indent=1) + "\n",
                    encoding="utf-8")
    return data
