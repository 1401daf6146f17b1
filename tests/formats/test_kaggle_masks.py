from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from _roundtrip import assert_same_dataset
from PIL import Image

from visionloop.core.annotations import RLE, Boxes, Instances
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import detect_format, kaggle_masks
from visionloop.formats.base import FormatDataset, Sample


@pytest.fixture
def three_items(dsb_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "dsb"
    for item in sorted((dsb_dir / "stage1_train").iterdir())[:3]:
        shutil.copytree(item, root / item.name)
    return root


def test_three_real_items_roundtrip(three_items: Path, tmp_path: Path) -> None:
    assert detect_format(three_items) == ("kaggle_masks", 0.95)
    ds = kaggle_masks.load(three_items)
    assert ds.task == Task.SEGMENTATION and ds.classes == ["nucleus"]
    expected = sum(len(list((d / "masks").glob("*.png"))) for d in three_items.iterdir())
    assert sum(len(s.annotation) for s in ds.samples) == expected and len(ds.samples) == 3
    first = ds.samples[0]
    mask_file = sorted((three_items / Path(first.name).parts[0] / "masks").glob("*.png"))[0]
    assert np.array_equal(first.annotation.segmentations[0].decode(), np.asarray(Image.open(mask_file)) > 0)
    ys, xs = np.nonzero(np.asarray(Image.open(mask_file)))
    assert first.annotation.boxes.xyxy[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert Image.open(first.image_path).mode == "RGBA"
    kaggle_masks.save(ds, tmp_path / "out")
    again = kaggle_masks.load(tmp_path / "out")
    assert_same_dataset(ds, again)
    assert ds.problems == [] and again.problems == []


def test_real_dsb_counts(dsb_dir: Path) -> None:
    """The whole stage1_train: 120 images and 4,597 instance masks (about 6 s)."""
    assert detect_format(dsb_dir)[0] == "kaggle_masks"
    ds = kaggle_masks.load(dsb_dir)
    assert len(ds.samples) == 120
    assert sum(len(s.annotation) for s in ds.samples) == 4597
    assert {s.subset for s in ds.samples} == {"stage1_train"}
    assert ds.problems == []


@pytest.mark.slow
def test_real_dsb_roundtrip(dsb_dir: Path, tmp_path: Path) -> None:
    ds = kaggle_masks.load(dsb_dir)
    kaggle_masks.save(ds, tmp_path)
    again = kaggle_masks.load(tmp_path)
    assert len(again.samples) == 120 and sum(len(s.annotation) for s in again.samples) == 4597
    assert_same_dataset(ds, again)


def test_class_folders_and_polygons(tmp_path: Path) -> None:
    square = np.zeros((16, 20), bool)
    square[2:6, 3:9] = True
    ds = FormatDataset(task=Task.SEGMENTATION, classes=["a", "b"], samples=[Sample(
        name="img1.png", width=20, height=16, annotation=Instances(
            Boxes([[3, 2, 9, 6], [10, 8, 14, 12]], [0, 1]),
            [RLE.encode(square), [[10, 8, 14, 8, 14, 12, 10, 12]]]))])
    src = tmp_path / "src.png"
    Image.new("RGB", (20, 16)).save(src)
    ds.samples[0].image_path = src
    kaggle_masks.save(ds, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out/img1/masks").iterdir()) == ["a", "b"]
    again = kaggle_masks.load(tmp_path / "out")
    assert again.classes == ["a", "b"]
    inst = again.samples[0].annotation
    assert np.array_equal(inst.segmentations[0].decode(), square)
    assert inst.boxes.xyxy[1].tolist() == [10, 8, 14, 12]


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="Kaggle DSB"):
        kaggle_masks.load(tmp_path)
    item = tmp_path / "x1"
    (item / "images").mkdir(parents=True)
    (item / "masks").mkdir()
    Image.new("RGB", (8, 6)).save(item / "images" / "x1.png")
    Image.new("L", (8, 6)).save(item / "masks" / "empty.png")
    Image.new("L", (4, 4), 255).save(item / "masks" / "small.png")
    (item / "masks" / "junk.png").write_bytes(b"not a png")
    ok = np.zeros((6, 8), np.uint8)
    ok[1:3, 1:3] = 255
    Image.fromarray(ok).save(item / "masks" / "ok.png")
    ds = kaggle_masks.load(tmp_path)
    assert len(ds.samples) == 1 and len(ds.samples[0].annotation) == 1
    reasons = " | ".join(p.reason for p in ds.problems)
    assert "empty" in reasons and "unreadable" in reasons and "image is 8x6" in reasons
    with pytest.raises(FormatError, match="boxes have none"):
        kaggle_masks.save(FormatDataset(task=Task.DETECTION, classes=["a"], samples=[
            Sample(name="b.png", annotation=Boxes([[0, 0, 1, 1]], [0]))]), tmp_path / "o")


def test_semantic_layout_is_not_kaggle(formats_dir: Path) -> None:
    assert kaggle_masks.detect(formats_dir / "common_semantic_segmentation_dataset/dataset") == 0.0
    assert kaggle_masks.detect(formats_dir / "kaggle_dataset/image_mask") == 0.0
