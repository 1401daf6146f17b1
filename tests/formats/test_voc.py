from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from boxfmt_compare import roundtrip

from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import csv_table, detect_format, voc

REAL = [
    "voc_dataset/voc_dataset1", "voc_dataset/voc_dataset2", "voc_dataset/voc_dataset3",
    "kaggle_dataset/relaxed_voc1", "kaggle_dataset/relaxed_voc2", "roboflow_dataset/voc",
]


@pytest.mark.parametrize("rel", REAL)
def test_roundtrip_real_samples(formats_dir: Path, tmp_path: Path, rel: str) -> None:
    roundtrip(voc, formats_dir / rel, tmp_path)


@pytest.mark.parametrize("rel", REAL)
def test_detected_as_voc(formats_dir: Path, rel: str) -> None:
    assert detect_format(formats_dir / rel)[0] == "voc"


def test_labelme_xml_is_not_voc(formats_dir: Path) -> None:
    assert voc.detect(formats_dir / "labelme_dataset") == 0.0


def test_voc1_content(formats_dir: Path) -> None:
    ds = voc.load(formats_dir / "voc_dataset/voc_dataset1")
    assert ds.task is Task.DETECTION and ds.classes == ["cat", "person"]
    (s,) = ds.samples
    assert (s.name, s.subset, s.width, s.height) == ("2007_000001.jpg", "train", 20, 10)
    assert s.image_path.name == "2007_000001.jpg"
    # coordinates read as written (pixel edges), attributes from the flags
    assert s.annotation.xyxy.tolist() == [[1, 2, 3, 4], [4, 5, 6, 7]]
    assert s.annotation.attributes == [{"truncated": True}, {}]
    assert ds.problems == []


def test_single_file(formats_dir: Path) -> None:
    ds = voc.load(formats_dir / "voc_dataset/voc_dataset1/Annotations/2007_000001.xml")
    assert [(s.name, s.subset) for s in ds.samples] == [("2007_000001.jpg", "train")]
    assert ds.samples[0].image_path is not None


def test_missing_images_reported(formats_dir: Path) -> None:
    ds = voc.load(formats_dir / "voc_dataset/voc_dataset2")
    assert len(ds.samples) == 5 and all(s.image_path is None for s in ds.samples)
    assert sorted(p.path for p in ds.problems) == [f"Annotations/{n}.xml" for n in "@abcd"]
    assert all("not found" in p.reason for p in ds.problems)
    empty = next(s for s in ds.samples if s.name == "@.jpg")
    assert len(empty.annotation) == 0


def test_bccd(bccd_dir: Path, tmp_path: Path) -> None:
    ds = voc.load(bccd_dir / "BCCD")
    assert len(ds.samples) == 364
    assert all(s.image_path is not None for s in ds.samples)
    counts = Counter(ds.classes[c] for s in ds.samples for c in s.annotation.class_id)
    assert counts == {"RBC": 4155, "WBC": 372, "Platelets": 361}
    assert Counter(s.subset for s in ds.samples) == {"train": 205, "val": 87, "test": 72}
    # measured: no BCCD box sticks out of its image under the as-written convention (xmax <= width, xmin >= 1);
    # two boxes are single points (xmin == xmax, ymin == ymax); they are kept, so the counts match, and reported
    assert [p for p in ds.problems if p.action == "clipped"] == []
    zero = [p for p in ds.problems if p.action == "kept"]
    assert sorted(p.path for p in zero) == ["Annotations/BloodImage_00338.xml", "Annotations/BloodImage_00343.xml"]
    assert len(ds.problems) == 2
    # the parent folder is recognised too
    assert detect_format(bccd_dir) == ("voc", pytest.approx(0.9))


def test_bccd_boxes_equal_its_csv(bccd_dir: Path) -> None:
    """BCCD ships test.csv with the same boxes: with boxes read as written, both formats agree box for box."""
    from_voc = voc.load(bccd_dir / "BCCD")
    from_csv = csv_table.load(bccd_dir / "test.csv")

    def rows(ds):
        return sorted((s.name, ds.classes[c], *b) for s in ds.samples
                      for b, c in zip(s.annotation.xyxy.tolist(), s.annotation.class_id.tolist(), strict=True))

    assert len(rows(from_csv)) == 4888
    assert rows(from_voc) == rows(from_csv)


def test_bccd_roundtrip(bccd_dir: Path, tmp_path: Path) -> None:
    first, second = roundtrip(voc, bccd_dir / "BCCD", tmp_path)
    assert len(second.samples) == 364
    assert (tmp_path / "export/ImageSets/Main/train.txt").read_text().split() == sorted(
        s.name[:-4] for s in first.samples if s.subset == "train")


# --- bad input ---------------------------------------------------------------------------------------------------

_XML = """<annotation><filename>{name}</filename><size><width>64</width><height>48</height></size>{objects}
</annotation>"""
_OBJ = "<object><name>{label}</name><bndbox><xmin>{0}</xmin><ymin>{1}</ymin><xmax>{2}</xmax><ymax>{3}</ymax></bndbox></object>"


def _write_xml(root: Path, stem: str, name: str, boxes: list[tuple]) -> None:
    objs = "".join(_OBJ.format(*b[1:], label=b[0]) for b in boxes)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{stem}.xml").write_text(_XML.format(name=name, objects=objs))


def test_bad_files(tmp_path: Path, image_factory) -> None:
    image_factory("JPEGImages/a.jpg", width=64, height=48)
    image_factory("JPEGImages/b.jpg", width=64, height=48)
    _write_xml(tmp_path, "a", "a.jpg", [("cat", 10, 10, 80, 40), ("dog", 5, 5, 4, 9), ("cat", 70, 50, 90, 60)])
    _write_xml(tmp_path, "b", "b.jpg", [("cat", 1, 2, 3, 4)])
    _write_xml(tmp_path, "c", "missing.jpg", [("cat", 1, 2, 3, 4)])
    (tmp_path / "Annotations" / "d.xml").write_text("<annotation><filename>b.jpg</file")
    (tmp_path / "Annotations" / "e.xml").write_text(
        "<annotation><filename>b.jpg</filename><object><name>cat</name></object></annotation>")
    ds = voc.load(tmp_path)
    a = next(s for s in ds.samples if s.name == "a.jpg")
    assert a.annotation.xyxy.tolist() == [[10, 10, 64, 40]]
    problems = {(p.path, p.action): p.reason for p in ds.problems}
    assert "clipped to ['10', '10', '64', '40']" in problems[("Annotations/a.xml", "clipped")]
    reasons = [p.reason for p in ds.problems if p.path == "Annotations/a.xml" and p.action == "skipped"]
    assert any("x2 < x1" in r for r in reasons) and any("entirely outside" in r for r in reasons)
    assert "not found" in problems[("Annotations/c.xml", "skipped")]
    assert "not readable as XML" in problems[("Annotations/d.xml", "skipped")]
    e_reasons = [p.reason for p in ds.problems if p.path == "Annotations/e.xml"]
    assert any("no complete <bndbox>" in r for r in e_reasons)
    assert any("b.jpg" in r and "Annotations/b.xml" in r for r in e_reasons)  # a second XML for the same image
    assert sorted(s.name for s in ds.samples) == ["a.jpg", "b.jpg", "missing.jpg"]


def test_not_voc(tmp_path: Path) -> None:
    assert voc.detect(tmp_path) == 0.0
    with pytest.raises(FormatError, match="expected Pascal VOC"):
        voc.load(tmp_path)
