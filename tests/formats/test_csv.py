from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from boxfmt_compare import assert_same, by_key, instance_count, roundtrip

from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import csv_table, detect_format

REAL = [
    "kaggle_dataset/image_csv_det/ann.csv", "kaggle_dataset/image_csv_det/ann2.csv",
    "kaggle_dataset/image_csv_det/ann3.csv", "kaggle_dataset/image_csv_multi_label/ann.csv",
    "kaggle_dataset/image_csv_multi_label/ann_wo_ext.csv", "kaggle_dataset/image_csv/ann.csv",
    "kaggle_dataset/image_csv/ann_wo_ext.csv", "vott_csv_dataset/dataset", "vott_csv_dataset/dataset_with_meta_file",
    "roboflow_dataset/multiclass",
]


@pytest.mark.parametrize("rel", REAL)
def test_roundtrip_real_samples(formats_dir: Path, tmp_path: Path, rel: str) -> None:
    first, _ = roundtrip(csv_table, formats_dir / rel, tmp_path)
    assert all(s.image_path is not None for s in first.samples)


@pytest.mark.parametrize("rel", REAL)
def test_detected_as_csv(formats_dir: Path, rel: str) -> None:
    assert detect_format(formats_dir / rel)[0] == "csv"


def test_box_column_styles_agree(formats_dir: Path) -> None:
    """xyxy columns, x/y/w/h columns and a bbox cell describe the same boxes in the Kaggle samples."""
    base = formats_dir / "kaggle_dataset/image_csv_det"
    xyxy, xywh, cell = (csv_table.load(base / n) for n in ("ann.csv", "ann2.csv", "ann3.csv"))
    assert xyxy.task is Task.DETECTION and xyxy.classes == ["dog", "cat"]
    assert instance_count(xyxy) == 6
    assert_same(xyxy, xywh)
    assert_same(xyxy, cell)
    one = next(s for s in xyxy.samples if s.name == "1.jpg").annotation
    assert one.xyxy.tolist() == [[0, 1, 1, 2], [1, 2, 3, 3]]


def test_classification_and_tagging(formats_dir: Path) -> None:
    cls = csv_table.load(formats_dir / "kaggle_dataset/image_csv/ann_wo_ext.csv")
    assert cls.task is Task.CLASSIFICATION
    assert by_key(cls)[(None, "1.jpg")] == ("label", "dog")  # extension-less names find their image
    tags = csv_table.load(formats_dir / "kaggle_dataset/image_csv_multi_label/ann.csv")
    assert tags.task is Task.TAGGING
    assert by_key(tags)[(None, "5.jpg")] == ("tags", ("dog", "person"))
    rf = csv_table.load(formats_dir / "roboflow_dataset/multiclass")
    assert by_key(rf)[("val", "val_001.jpg")] == ("tags", ("label_0", "label_1"))


def test_vott_subsets_and_meta(formats_dir: Path) -> None:
    ds = csv_table.load(formats_dir / "vott_csv_dataset/dataset")
    assert {(s.subset, s.name) for s in ds.samples} == {
        ("test", "img0001.jpg"), ("test", "img0002.jpg"), ("train", "img0003.jpg"), ("train", "img0004.jpg")}
    s = next(s for s in ds.samples if s.name == "img0002.jpg")
    assert s.annotation.xyxy.tolist() == [[11.5, 12, 21.7, 32.5]]


def test_bccd_csv(bccd_dir: Path) -> None:
    ds = csv_table.load(bccd_dir / "test.csv")
    assert len(ds.samples) == 364 and instance_count(ds) == 4888
    # the CSV sits beside BCCD/, not beside the images: names are kept, images reported missing
    assert all(s.image_path is None for s in ds.samples)
    assert len([p for p in ds.problems if "not found" in p.reason]) == 364


def test_folder_with_ambiguous_csvs(formats_dir: Path) -> None:
    ds = csv_table.load(formats_dir / "kaggle_dataset/image_csv")
    assert len(ds.samples) == 5
    assert any("2 CSV files" in p.reason for p in ds.problems)


# --- bad input ---------------------------------------------------------------------------------------------------


def test_bad_rows(tmp_path: Path, image_factory) -> None:
    image_factory("a.jpg", width=64, height=48)
    image_factory("images/b.jpg", width=64, height=48)
    (tmp_path / "boxes.csv").write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\n"
        "a.jpg,64,48,cat,10,10,80,40\n"     # sticks out: clipped to the width column
        "a.jpg,64,48,cat,1,x,3,4\n"         # not a number
        "a.jpg,64,48,,1,2,3,4\n"            # no label
        "b.jpg,64,48,,,,,\n"                # annotated with nothing
        "gone.jpg,64,48,dog,1,2,3,4\n"      # missing image
    )
    ds = csv_table.load(tmp_path / "boxes.csv")
    got = {s.name: s for s in ds.samples}
    assert got["a.jpg"].annotation.xyxy.tolist() == [[10, 10, 64, 40]]
    assert len(got["b.jpg"].annotation) == 0 and got["b.jpg"].image_path is not None
    assert got["gone.jpg"].image_path is None
    reasons = [(p.action, p.reason) for p in ds.problems]
    assert any(a == "clipped" and "64x48" in r for a, r in reasons)
    assert any("row 3" in r and "could not convert" in r for _, r in reasons)
    assert any("row 4" in r and "exactly one label" in r for _, r in reasons)
    assert any("'gone.jpg' not found" in r for _, r in reasons)


def test_tagging_roundtrip_with_empty(tmp_path: Path, image_factory) -> None:
    image_factory("a.jpg")
    image_factory("b.jpg", seed=3)
    (tmp_path / "t.csv").write_text("image,labels\na.jpg,cat;dog\nb.jpg,\n")
    ds = csv_table.load(tmp_path / "t.csv")
    assert ds.task is Task.TAGGING
    assert by_key(ds) == {(None, "a.jpg"): ("tags", ("cat", "dog")), (None, "b.jpg"): ("tags", ())}
    csv_table.save(ds, tmp_path / "out")
    assert (tmp_path / "out/annotations.csv").read_text() == "image,labels\na.jpg,cat;dog\nb.jpg,\n"
    assert_same(ds, csv_table.load(tmp_path / "out"))


def test_unusable_csv(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("foo,bar\n1,2\n")
    assert csv_table.detect(tmp_path / "x.csv") == 0.0
    with pytest.raises(FormatError, match="expected a CSV"):
        csv_table.load(tmp_path / "x.csv")
    with pytest.raises(FormatError, match="expected a CSV"):
        csv_table.load(tmp_path)


def test_float_boxes_written_exactly(tmp_path: Path, formats_dir: Path) -> None:
    ds = csv_table.load(formats_dir / "vott_csv_dataset/dataset")
    csv_table.save(ds, tmp_path)
    text = (tmp_path / "train/annotations.csv").read_text()
    assert "img0003.jpg,13.7,20.2,45.6,63.6,person" in text
    assert np.isclose(csv_table.load(tmp_path).samples[0].annotation.xyxy, ds.samples[0].annotation.xyxy).all()
