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

from visionloop.core.annotations import Boxes
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
