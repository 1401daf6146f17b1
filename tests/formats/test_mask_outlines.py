"""Masks are exported as outlines with runtime dependencies only: scikit-image (dev-only) is never needed."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from visionloop.core import RLE, Boxes, Instances
from visionloop.core.task import Task
from visionloop.formats import yolo
from visionloop.formats._geometry import mask_to_rings, ring_area
from visionloop.formats.base import FormatDataset, Sample


@pytest.fixture
def no_skimage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import skimage`` (and its submodules) fail, as on an install without dev dependencies."""
    for name in [m for m in sys.modules if m == "skimage" or m.startswith("skimage.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(ImportError):
        import skimage  # noqa: F401


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def _raster(rings: list[list[float]], h: int, w: int) -> np.ndarray:
    return coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(rings, h, w))).astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_outlines_follow_the_mask_without_scikit_image(no_skimage: None) -> None:
    h, w = 60, 80
    disc = _disc(h, w, 30, 25, 14)
    [ring] = mask_to_rings(disc)
    assert _iou(_raster([ring], h, w), disc) > 0.95  # a bounding box would give pi/4 = 0.785
    ell = np.zeros((6, 8), bool)
    ell[1:5, 1:3] = True
    ell[3:5, 3:6] = True
    [ring] = mask_to_rings(ell)
    assert len(ring) // 2 == 12  # straight edges hold no points, only the (cut) corners
    assert ring_area(ring) == pytest.approx(ell.sum() - 6 * 0.125 + 2 * 0.125)  # 6 convex, 2 concave cut corners
    two = np.zeros((10, 10), bool)
    two[1:3, 1:3] = two[6:9, 6:9] = True
    assert len(mask_to_rings(two)) == 2 and mask_to_rings(np.zeros((4, 4), bool)) == []


def test_yolo_export_of_rle_masks_writes_outlines_without_scikit_image(no_skimage: None, tmp_path) -> None:
    h, w = 48, 64
    disc = _disc(h, w, 40, 20, 9)
    rle = RLE.encode(disc)
    box = Boxes([[31, 11, 49, 29]], [0])
    ds = FormatDataset(task=Task.SEGMENTATION, classes=["cell"], samples=[
        Sample(name="a.png", annotation=Instances(box, [rle]), width=w, height=h)])
    yolo.save(ds, tmp_path)
    values = [float(v) for v in (tmp_path / "labels" / "a.txt").read_text().split()[1:]]
    assert len(values) > 8  # an outline, not the 4 corners of the box
    ring = [v * (w if i % 2 == 0 else h) for i, v in enumerate(values)]
    assert _iou(_raster([ring], h, w), disc) > 0.9
