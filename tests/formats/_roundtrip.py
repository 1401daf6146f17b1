"""Comparing two loads of a dataset by meaning: class names instead of ids, masks as arrays, coordinates within tol."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.formats.base import FormatDataset


def _boxes_rows(ds: FormatDataset, b: Boxes) -> list[tuple]:
    rows = []
    for i in range(len(b)):
        rows.append((
            ds.classes[int(b.class_id[i])],
            tuple(float(v) for v in b.xyxy[i]),
            None if b.track_id is None else int(b.track_id[i]),
            b.attributes[i] if b.attributes else {},
            i,
        ))
    return sorted(rows, key=lambda r: (r[0], r[1], r[2] if r[2] is not None else -1))


def assert_same_annotation(ds_a: FormatDataset, a, ds_b: FormatDataset, b, *, tol: float = 1e-3,
                           where: str = "", attributes: bool = True) -> None:
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if a is None:
        return
    if isinstance(a, Label):
        assert ds_a.classes[a.class_id] == ds_b.classes[b.class_id], where
    elif isinstance(a, Tags):
        assert {ds_a.classes[c] for c in a.class_ids} == {ds_b.classes[c] for c in b.class_ids}, where
    elif isinstance(a, SemanticMask):
        names_a = np.array(ds_a.classes + ["<ignore>"] * 256, dtype=object)
        names_b = np.array(ds_b.classes + ["<ignore>"] * 256, dtype=object)
        ma = np.where(a.mask == a.ignore_index, len(ds_a.classes), a.mask)
        mb = np.where(b.mask == b.ignore_index, len(ds_b.classes), b.mask)
        assert ma.shape == mb.shape, where
        assert (names_a[ma] == names_b[mb]).all(), f"{where}: semantic masks differ"
    else:
        boxes_a = a.boxes if isinstance(a, Instances) else a
        boxes_b = b.boxes if isinstance(b, Instances) else b
        ra, rb = _boxes_rows(ds_a, boxes_a), _boxes_rows(ds_b, boxes_b)
        assert len(ra) == len(rb), f"{where}: {len(ra)} vs {len(rb)} objects"
        for x, y in zip(ra, rb, strict=True):
            assert x[0] == y[0], f"{where}: class {x[0]} != {y[0]}"
            assert np.allclose(x[1], y[1], atol=tol), f"{where}: box {x[1]} != {y[1]}"
            assert x[2] == y[2], f"{where}: track {x[2]} != {y[2]}"
            if attributes:
                assert x[3] == y[3], f"{where}: attributes {x[3]} != {y[3]}"
            if isinstance(a, Instances):
                sa, sb = a.segmentations[x[4]], b.segmentations[y[4]]
                assert type(sa) is type(sb), f"{where}: {type(sa).__name__} vs {type(sb).__name__}"
                if isinstance(sa, RLE):
                    assert np.array_equal(sa.decode(), sb.decode()), f"{where}: masks differ"
                else:
                    assert len(sa) == len(sb), f"{where}: {len(sa)} vs {len(sb)} rings"
                    for p, q in zip(sorted(sa), sorted(sb), strict=True):
                        assert len(p) == len(q) and np.allclose(p, q, atol=tol), f"{where}: polygon {p} != {q}"


def assert_same_dataset(a: FormatDataset, b: FormatDataset, *, tol: float = 1e-3, attributes: bool = True) -> None:
    """Same task, same sample names, equal annotations (by class name) and same video fields."""
    assert a.task == b.task
    by_name = {s.name: s for s in b.samples}
    assert sorted(s.name for s in a.samples) == sorted(by_name), "sample names differ"
    for s in a.samples:
        t = by_name[s.name]
        assert (s.video_id, s.frame_index) == (t.video_id, t.frame_index), s.name
        assert_same_annotation(a, s.annotation, b, t.annotation, tol=tol, where=s.name, attributes=attributes)


def image_bytes_equal(a: Path | None, b: Path | None) -> bool:
    return a is not None and b is not None and a.read_bytes() == b.read_bytes()
