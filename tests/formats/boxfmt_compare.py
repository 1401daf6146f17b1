"""Comparing two FormatDatasets the way a user would: class names, boxes, decoded masks, per (subset, image name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.annotations import Boxes, Instances, Label, SemanticMask, Tags
from visionloop.formats import detect_format
from visionloop.formats.base import FormatDataset, Sample


def _mask_key(inst: Instances, i: int, sample: Sample) -> bytes:
    seg = inst.segmentations[i]
    h, w = (seg.size if not isinstance(seg, list) else (sample.height, sample.width))
    assert h and w, f"{sample.name}: polygon needs the image size to be decoded"
    return np.packbits(inst.mask(i, int(h), int(w))).tobytes()


def canonical(sample: Sample, classes: list[str], *, digits: int = 3) -> Any:
    ann = sample.annotation
    if ann is None:
        return None
    if isinstance(ann, Label):
        return ("label", classes[ann.class_id])
    if isinstance(ann, Tags):
        return ("tags", tuple(sorted(classes[c] for c in ann.class_ids)))
    if isinstance(ann, SemanticMask):
        return ("semantic", ann.mask.shape, {classes[c]: int((ann.mask == c).sum()) for c in ann.class_ids()})
    boxes = ann.boxes if isinstance(ann, Instances) else ann
    assert isinstance(boxes, Boxes)
    rows = []
    for i in range(len(boxes)):
        row: tuple[Any, ...] = (
            classes[int(boxes.class_id[i])],
            tuple(float(v) + 0.0 for v in np.round(boxes.xyxy[i], digits)),
            json.dumps(boxes.attributes[i] if boxes.attributes else {}, sort_keys=True),
            None if boxes.score is None else round(float(boxes.score[i]), digits),
        )
        if isinstance(ann, Instances):
            row += (_mask_key(ann, i, sample),)
        rows.append(row)
    return (type(ann).__name__, tuple(sorted(rows)))


def by_key(ds: FormatDataset, **kw: Any) -> dict[tuple[str | None, str], Any]:
    out = {}
    for s in ds.samples:
        key = (s.subset, s.name)
        assert key not in out, f"duplicate sample {key}"
        out[key] = canonical(s, ds.classes, **kw)
    return out


def assert_same(a: FormatDataset, b: FormatDataset, **kw: Any) -> None:
    assert a.task == b.task
    ka, kb = by_key(a, **kw), by_key(b, **kw)
    assert sorted(ka, key=str) == sorted(kb, key=str)
    for key in ka:
        assert ka[key] == kb[key], f"{key}: {ka[key]} != {kb[key]}"


def roundtrip(module: Any, src: Path, tmp: Path, **kw: Any) -> tuple[FormatDataset, FormatDataset]:
    """load -> save -> load; asserts the two loads are equal and the export is detected as the same format."""
    first = module.load(src)
    assert first.samples, f"nothing loaded from {src}"
    out = tmp / "export"
    module.save(first, out)
    second = module.load(out)
    assert_same(first, second, **kw)
    assert detect_format(out)[0] == module.NAME
    return first, second


def instance_count(ds: FormatDataset) -> int:
    n = 0
    for s in ds.samples:
        ann = s.annotation
        if isinstance(ann, Instances | Boxes):
            n += len(ann)
    return n
