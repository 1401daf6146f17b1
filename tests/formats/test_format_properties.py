"""Property tests (Hypothesis): any detection dataset a project can hold (class names with any printable text, boxes
anywhere in the image, image names with spaces and unicode) survives save and load in COCO, LabelMe, Label Studio,
VIA and CVAT with the same classes and boxes. Bounded and derandomised."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _roundtrip import assert_same_annotation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from visionloop.core.annotations import Boxes, Instances
from visionloop.core.task import Task
from visionloop.formats import get_format
from visionloop.formats.base import FormatDataset, Sample

IMAGE = Path(__file__).parent / "assets" / "labelme" / "street_01.jpg"
W, H = Image.open(IMAGE).size

CLASS_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1,
                      max_size=20).map(str.strip).filter(bool)
"""Class names as people type them: any printable text, XML and JSON specials and quotes included."""
FILE_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"),
                                   exclude_characters="/\\<>:\"|?*"), min_size=1, max_size=12).map(str.strip).filter(
    lambda s: s and not s.startswith(".") and not s.endswith("."))


@st.composite
def datasets(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, Boxes]]]:
    classes = draw(st.lists(CLASS_NAMES, min_size=1, max_size=4, unique=True))
    names = draw(st.lists(FILE_NAMES, min_size=1, max_size=3, unique_by=str.lower))
    items = []
    for name in names:
        n = draw(st.integers(0, 3))
        rows = []
        for _ in range(n):
            x1, x2 = sorted(draw(st.lists(st.integers(0, W), min_size=2, max_size=2, unique=True)))
            y1, y2 = sorted(draw(st.lists(st.integers(0, H), min_size=2, max_size=2, unique=True)))
            rows.append([x1, y1, x2, y2])
        ids = draw(st.lists(st.integers(0, len(classes) - 1), min_size=n, max_size=n))
        items.append((f"{name}.jpg", Boxes(np.asarray(rows, dtype=np.float64).reshape(-1, 4), ids)))
    return classes, items


@pytest.mark.parametrize("fmt", ["coco", "labelme", "labelstudio", "via", "cvat"])
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=datasets())
def test_detection_dataset_round_trips(fmt: str, data: tuple[list[str], list[tuple[str, Boxes]]]) -> None:
    classes, items = data
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        samples = []
        for name, boxes in items:
            shutil.copyfile(IMAGE, src / name)
            samples.append(Sample(name=name, image_path=src / name, annotation=boxes, width=W, height=H))
        ds = FormatDataset(task=Task.DETECTION, classes=classes, samples=samples)
        module = get_format(fmt)
        module.save(ds, Path(tmp) / "out")
        again = module.load(Path(tmp) / "out")
        assert not [p for p in again.problems if p.action != "kept"], again.problems
        by_name = {Path(s.name).name: s for s in again.samples}
        assert sorted(by_name) == sorted(name for name, _ in items)
        for name, boxes in items:
            got = by_name[name]
            assert got.image_path is not None
            if len(boxes):
                assert_same_annotation(ds, boxes, again, got.annotation, where=f"{fmt}:{name}", attributes=False)
            else:
                assert got.annotation is None or len(got.annotation) == 0


def _area(ring: list[float]) -> float:
    xs, ys = np.asarray(ring[0::2]), np.asarray(ring[1::2])
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


@st.composite
def polygons(draw: st.DrawFn) -> list[float]:
    n = draw(st.sampled_from([3, 5]))  # never 4: a 4-point axis-aligned ring is read back as a box
    points = draw(st.lists(st.tuples(st.integers(0, W), st.integers(0, H)), min_size=n, max_size=n, unique=True))
    ring = [float(v) for p in points for v in p]
    return ring


@pytest.mark.parametrize("fmt", ["coco", "labelme", "labelstudio", "via", "cvat"])
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(classes=st.lists(CLASS_NAMES, min_size=1, max_size=3, unique=True),
       rings=st.lists(polygons().filter(lambda r: _area(r) >= 2), min_size=1, max_size=3))
def test_polygon_dataset_round_trips(fmt: str, classes: list[str], rings: list[list[float]]) -> None:
    xyxy = [[min(r[0::2]), min(r[1::2]), max(r[0::2]), max(r[1::2])] for r in rings]
    inst = Instances(Boxes(xyxy, [i % len(classes) for i in range(len(rings))]), [[r] for r in rings])
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(IMAGE, Path(tmp) / "img.jpg")
        ds = FormatDataset(task=Task.SEGMENTATION, classes=classes, samples=[
            Sample(name="img.jpg", image_path=Path(tmp) / "img.jpg", annotation=inst, width=W, height=H)])
        module = get_format(fmt)
        module.save(ds, Path(tmp) / "out")
        again = module.load(Path(tmp) / "out")
        assert again.task is Task.SEGMENTATION
        assert not [p for p in again.problems if p.action != "kept"], again.problems
        (got,) = again.samples
        assert_same_annotation(ds, inst, again, got.annotation, where=fmt, attributes=False)
