from __future__ import annotations

from pathlib import Path

import pytest
from boxfmt_compare import roundtrip

from visionloop.core.annotations import Label
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import class_folders, detect_format
from visionloop.formats.base import FormatDataset, Sample


@pytest.mark.parametrize("rel", ["imagenet_dataset", "imagenet_subsets_dataset"])
def test_roundtrip_real_samples(formats_dir: Path, tmp_path: Path, rel: str) -> None:
    roundtrip(class_folders, formats_dir / rel, tmp_path)


@pytest.mark.parametrize("rel", ["imagenet_dataset", "imagenet_subsets_dataset"])
def test_detected_as_class_folders(formats_dir: Path, rel: str) -> None:
    assert detect_format(formats_dir / rel)[0] == "class_folders"


def test_imagenet_content(formats_dir: Path) -> None:
    ds = class_folders.load(formats_dir / "imagenet_dataset")
    assert ds.task is Task.CLASSIFICATION and ds.classes == ["label_0", "label_1"]
    got = {s.name: (None if s.annotation is None else ds.classes[s.annotation.class_id]) for s in ds.samples}
    # a nested folder belongs to its top-level class; an image at the root has no class and is reported
    assert got == {"label_0/label_0_1.jpg": "label_0", "label_1/label_1_1.jpg": "label_1",
                   "label_1/label_1_1/label_1_1.jpg": "label_1", "label_0_2.jpg": None}
    assert [(p.path, p.action) for p in ds.problems] == [("label_0_2.jpg", "kept")]


def test_subsets(formats_dir: Path) -> None:
    ds = class_folders.load(formats_dir / "imagenet_subsets_dataset")
    assert {s.subset for s in ds.samples} == {"train", "val", "test"}
    s = next(s for s in ds.samples if s.name == "train/label_0/label_0_1.jpg")
    assert s.subset == "train" and ds.classes[s.annotation.class_id] == "label_0"


def test_save_from_another_format(image_factory, tmp_path: Path) -> None:
    a, b = image_factory("src/x/a.jpg", seed=1), image_factory("src/b.jpg", seed=2)
    ds = FormatDataset(task=Task.CLASSIFICATION, classes=["cat", "dog"], samples=[
        Sample(name="x/a.jpg", image_path=a, annotation=Label(1), subset="val"),
        Sample(name="b.jpg", image_path=b, annotation=Label(0))])
    class_folders.save(ds, tmp_path / "out")
    assert (tmp_path / "out/val/dog/x/a.jpg").is_file() and (tmp_path / "out/cat/b.jpg").is_file()


def test_other_layouts_are_not_class_folders(formats_dir: Path, tmp_path: Path) -> None:
    for rel in ("voc_dataset/voc_dataset1", "yolo_dataset/labels", "coco_dataset/coco", "roboflow_dataset/multiclass"):
        assert class_folders.detect(formats_dir / rel) < 0.2, rel
    with pytest.raises(FormatError, match="class folders"):
        class_folders.load(tmp_path)
    with pytest.raises(FormatError, match="class"):
        class_folders.save(FormatDataset(task=Task.DETECTION), tmp_path / "x")
