from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from boxfmt_compare import assert_same, roundtrip
from tests.conftest import make_image_bytes

from visionloop.core.annotations import RLE, Boxes, Instances
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import detect_format, yolo
from visionloop.formats.base import FormatDataset, Sample

REAL = [
    "yolo_dataset/labels", "yolo_dataset/annotations", "yolo_dataset/strict", "roboflow_dataset/yolo",
    "kaggle_dataset/relaxed_yolo",
]


@pytest.mark.parametrize("rel", REAL)
def test_roundtrip_real_samples(formats_dir: Path, tmp_path: Path, rel: str) -> None:
    roundtrip(yolo, formats_dir / rel, tmp_path)


@pytest.mark.parametrize("rel", REAL)
def test_detected_as_yolo(formats_dir: Path, rel: str) -> None:
    assert detect_format(formats_dir / rel)[0] == "yolo"


@pytest.mark.parametrize("rel", ["yolo_dataset/labels", "yolo_dataset/annotations", "yolo_dataset/strict"])
def test_layouts_give_the_same_boxes(formats_dir: Path, rel: str) -> None:
    ds = yolo.load(formats_dir / rel)
    assert ds.classes == [f"label_{i}" for i in range(10)]
    s = ds.samples[0]
    assert s.name == "1.jpg" and (s.width, s.height) == (15, 10)
    assert s.subset == {"yolo_dataset/labels": "train", "yolo_dataset/strict": "train"}.get(rel)
    # "2 0.133333 0.3 0.266667 0.2" on a 15x10 image; the -7e-6 px overhang from rounding is clipped silently
    assert np.allclose(s.annotation.xyxy, [[0, 2, 4, 4], [3, 3, 5, 6]], atol=1e-4)
    assert [ds.classes[c] for c in s.annotation.class_id] == ["label_2", "label_4"]
    assert ds.problems == []


def test_roboflow_subsets(formats_dir: Path) -> None:
    """Roboflow's data.yaml says ``train: ../train/images`` (Ultralytics drops the ``../``) and ``val:
    ../valid/images``, a folder this sample does not have: reported, and val keeps the subset its folder names."""
    ds = yolo.load(formats_dir / "roboflow_dataset/yolo")
    assert sorted((s.subset, s.name) for s in ds.samples) == [
        ("train", "train_001.jpg"), ("train", "train_002.jpg"), ("val", "val_001.jpg")]
    [problem] = ds.problems
    assert problem.path == "data.yaml: val" and problem.action == "ignored"
    assert "'../valid/images'" in problem.reason and "'valid/images' is not there either" in problem.reason


def _labelled(folder: Path, stem: str, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.jpg").write_bytes(make_image_bytes(seed=seed))
    (folder / f"{stem}.txt").write_text("0 0.5 0.5 0.25 0.25\n")


def test_subsets_from_data_yaml_entries(tmp_path: Path) -> None:
    """Custom folder names: the subsets come from data.yaml's train/val/test (relative to ``path``; a folder, a list
    of folders, a .txt list of images); entries leading out of the dataset are problems, nothing is read there."""
    root = tmp_path / "ds"
    for stem, sub, seed in (("a", "fit", 1), ("b", "holdout", 2), ("b2", "holdout2", 3), ("c", "final", 4),
                            ("d", "final", 5), ("e", "spare", 6)):
        _labelled(root / "pics" / sub, stem, seed)
    (root / "pics" / "final.txt").write_text("./final/c.jpg\ndata/pics/final/d.jpg\n./final/missing.jpg\n")
    _labelled(tmp_path / "outside", "x", 7)
    (root / "data.yaml").write_text(yaml.safe_dump({
        "path": "pics", "train": ["fit", "../../outside", "/etc"], "val": ["holdout", "holdout2"],
        "test": "final.txt", "names": {0: "cell"}}))
    ds = yolo.load(root)
    subsets = {s.name: s.subset for s in ds.samples}
    assert subsets == {"pics/fit/a.jpg": "train", "pics/holdout/b.jpg": "val", "pics/holdout2/b2.jpg": "val",
                       "pics/final/c.jpg": "test", "pics/final/d.jpg": "test", "pics/spare/e.jpg": None}
    reasons = {(p.path, p.reason.split(";")[0]) for p in ds.problems}
    assert reasons == {
        ("data.yaml: train", "'../../outside': '..' leads out of the folder, and '../outside' is not there either"),
        ("data.yaml: train", "'/etc': absolute path or drive"),
        ("data.yaml: test (pics/final.txt)", "1 listed image(s) not found inside the dataset, e.g. './final/missing.jpg'"),
    }


def test_splits_from_a_data_yaml_without_names(tmp_path: Path) -> None:
    """Class names in obj.names, splits in data.yaml: both are used."""
    for stem, sub, seed in (("a", "fit", 1), ("b", "check", 2)):
        _labelled(tmp_path / sub, stem, seed)
    (tmp_path / "obj.names").write_text("cell\n")
    (tmp_path / "data.yaml").write_text("train: fit\nval: check\n")
    ds = yolo.load(tmp_path)
    assert ds.classes == ["cell"] and ds.problems == []
    assert sorted((s.name, s.subset) for s in ds.samples) == [("check/b.jpg", "val"), ("fit/a.jpg", "train")]


def test_path_outside_the_dataset_falls_back_to_the_yaml_folder(tmp_path: Path) -> None:
    _labelled(tmp_path / "ds/fit", "a", 1)
    (tmp_path / "ds/data.yaml").write_text("path: ../datasets/coco8\ntrain: fit\nval: fit2\nnames: [cell]\n")
    ds = yolo.load(tmp_path / "ds")
    assert [(s.name, s.subset) for s in ds.samples] == [("fit/a.jpg", "train")]
    assert [(p.path, p.action) for p in ds.problems] == [("data.yaml", "repaired"), ("data.yaml: val", "ignored")]


def test_one_folder_for_train_and_val_is_no_split(image_factory, tmp_path: Path) -> None:
    """What this exporter writes for a dataset without subsets (``train: images``, ``val: images``) reads back
    without a subset, not as train or val."""
    img = image_factory("src/a.jpg", width=64, height=48)
    ds = FormatDataset(task=Task.DETECTION, classes=["a"], samples=[
        Sample(name="a.jpg", image_path=img, annotation=Boxes([[8, 4, 40, 30]], [0]), width=64, height=48)])
    yolo.save(ds, tmp_path / "out")
    assert yaml.safe_load((tmp_path / "out/data.yaml").read_text())["val"] == "images"
    assert [s.subset for s in yolo.load(tmp_path / "out").samples] == [None]


def test_export_layout(formats_dir: Path, tmp_path: Path) -> None:
    yolo.save(yolo.load(formats_dir / "yolo_dataset/labels"), tmp_path)
    doc = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert doc["names"][2] == "label_2" and doc["train"] == "images/train" and doc["val"] == "images/val"
    assert (tmp_path / "labels/train/1.txt").read_text().splitlines()[1] == "4 0.266667 0.45 0.133333 0.3"
    assert (tmp_path / "images/val/1.jpg").is_file()


def _seg_dataset(image_factory) -> FormatDataset:
    img = image_factory("src/a.jpg", width=64, height=48)
    inst = Instances(Boxes([[8, 4, 40, 30], [0, 0, 16, 16]], [1, 0]),
                     [[[8.0, 4.0, 40.0, 4.0, 40.0, 30.0, 8.0, 30.0]], [[0.0, 0.0, 16.0, 0.0, 0.0, 16.0]]])
    return FormatDataset(task=Task.SEGMENTATION, classes=["a", "b"], samples=[
        Sample(name="a.jpg", image_path=img, annotation=inst, width=64, height=48, subset="train")])


def test_polygons_roundtrip(image_factory, tmp_path: Path) -> None:
    ds = _seg_dataset(image_factory)
    yolo.save(ds, tmp_path / "out")
    line = (tmp_path / "out/labels/train/a.txt").read_text().splitlines()[0]
    assert line == "1 0.125 0.083333 0.625 0.083333 0.625 0.625 0.125 0.625"
    back = yolo.load(tmp_path / "out")
    assert back.task is Task.SEGMENTATION
    assert_same(ds, back)


def test_rle_exported_as_traced_polygon(image_factory, tmp_path: Path) -> None:
    img = image_factory("src/a.png", width=40, height=30)
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:25, 10:30] = True
    mask[10:15, 20:25] = False  # a notch inside, ignored by the outline
    ds = FormatDataset(task=Task.SEGMENTATION, classes=["a"], samples=[
        Sample(name="a.png", image_path=img, annotation=Instances(Boxes([[10, 5, 30, 25]], [0]), [RLE.encode(mask)]),
               width=40, height=30)])
    yolo.save(ds, tmp_path / "out")
    back = yolo.load(tmp_path / "out").samples[0].annotation
    got = back.mask(0, 30, 40)
    full = np.zeros_like(mask)
    full[5:25, 10:30] = True
    iou = (got & full).sum() / (got | full).sum()
    assert iou > 0.95
    assert np.allclose(back.boxes.xyxy, [[10, 5, 30, 25]], atol=0.6)


def test_box_lines_in_polygon_dataset_become_rectangles(tmp_path: Path, image_factory) -> None:
    image_factory("images/a.jpg", width=100, height=50)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/a.txt").write_text("0 0.1 0.2 0.5 0.2 0.5 0.8\n0 0.5 0.5 0.2 0.4\n")
    (tmp_path / "classes.txt").write_text("thing\n")
    ds = yolo.load(tmp_path)
    ann = ds.samples[0].annotation
    assert ds.task is Task.SEGMENTATION and isinstance(ann, Instances)
    assert ann.segmentations[1] == [[40.0, 15.0, 60.0, 15.0, 60.0, 35.0, 40.0, 35.0]]
    assert [p.action for p in ds.problems] == ["repaired"]


# --- bad input ---------------------------------------------------------------------------------------------------


def test_bad_lines(tmp_path: Path, image_factory) -> None:
    image_factory("images/a.jpg", width=100, height=50)
    image_factory("images/b.jpg", width=100, height=50)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/a.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n"        # fine
        "0 0.95 0.5 0.2 0.2\n"       # sticks out on the right: clipped
        "5 0.5 0.5 0.1 0.1\n"        # class id beyond the names
        "0 50 25 10 10\n"            # pixels, not normalised
        "cat 0.5 0.5 0.1 0.1\n"      # not numbers
        "0 0.5 0.5\n"                # too few numbers
    )
    (tmp_path / "labels/ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text("names: ['thing', 'other']\n")
    ds = yolo.load(tmp_path)
    by_name = {s.name: s for s in ds.samples}
    assert np.allclose(by_name["a.jpg"].annotation.xyxy, [[40, 20, 60, 30], [85, 20, 100, 30]])
    assert len(by_name["b.jpg"].annotation) == 0  # no label file: a background image
    reasons = [(p.path, p.action, p.reason) for p in ds.problems]
    assert any(a == "clipped" and "100x50" in r for _, a, r in reasons)
    assert any("class id 5" in r for *_, r in reasons)
    assert any("not normalised" in r for *_, r in reasons)
    assert any("not numbers" in r for *_, r in reasons)
    assert any("2 numbers" in r for *_, r in reasons)
    assert ("labels/ghost.txt", "skipped", "label file without a matching image") in reasons


def test_missing_names_reported(formats_dir: Path) -> None:
    ds = yolo.load(formats_dir / "kaggle_dataset/relaxed_yolo")
    assert ds.classes == [f"class_{i}" for i in range(5)]
    assert any(p.action == "repaired" and "class names" in p.reason for p in ds.problems)


def test_not_yolo(formats_dir: Path, tmp_path: Path) -> None:
    assert yolo.detect(formats_dir / "kaggle_dataset/image_txt") == 0.0
    assert yolo.detect(formats_dir / "imagenet_dataset") == 0.0
    with pytest.raises(FormatError, match="expected YOLO"):
        yolo.load(formats_dir / "imagenet_dataset")
    with pytest.raises(FormatError, match="expected YOLO"):
        yolo.load(tmp_path)
