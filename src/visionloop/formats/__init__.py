"""Annotation formats of the tools people use; one module each with ``detect``, ``load`` and ``save``.

``FORMATS`` lists the registry names; modules are imported when first used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from visionloop.core.errors import FormatError, NotFoundError
from visionloop.formats.base import FormatDataset, Problem, Sample

FORMATS: dict[str, str] = {
    "coco": "visionloop.formats.coco",
    "voc": "visionloop.formats.voc",
    "yolo": "visionloop.formats.yolo",
    "cvat": "visionloop.formats.cvat",
    "labelstudio": "visionloop.formats.labelstudio",
    "labelme": "visionloop.formats.labelme",
    "via": "visionloop.formats.via",
    "kaggle_masks": "visionloop.formats.kaggle_masks",
    "semantic_masks": "visionloop.formats.semantic_masks",
    "csv": "visionloop.formats.csv_table",
    "class_folders": "visionloop.formats.class_folders",
}
"""Registry name -> module. Order matters only to break ties in detection (earlier wins)."""

__all__ = ["FORMATS", "FormatDataset", "Problem", "Sample", "detect_format", "get_format"]


def get_format(name: str) -> ModuleType:
    if name not in FORMATS:
        raise NotFoundError("format", name, choices=list(FORMATS))
    return importlib.import_module(FORMATS[name])


def detect_format(path: str | Path) -> tuple[str, float]:
    """The most likely format of ``path`` and the confidence; FormatError when no format claims it."""
    path = Path(path)
    scores = []
    for name in FORMATS:
        try:
            scores.append((get_format(name).detect(path), name))
        except ModuleNotFoundError:
            continue
    best = max(scores, default=(0.0, ""), key=lambda s: s[0])
    if best[0] <= 0:
        raise FormatError(path, None, f"no known format recognised; name one of {', '.join(FORMATS)} with --format")
    return best[1], best[0]
