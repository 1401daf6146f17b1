"""Hostile or broken data files for the VOC, CSV and YOLO readers: a per-file problem, never a traceback, and never
a file read from outside the dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import make_image_bytes

from visionloop.formats import csv_table, voc, yolo

SECRET = b"secret bytes outside the dataset"


def _voc(root: Path, xml: str, name: str = "a") -> Path:
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(exist_ok=True)
    (root / "JPEGImages" / "a.jpg").write_bytes(make_image_bytes(seed=1))
    (root / "Annotations" / f"{name}.xml").write_text(xml)
    return root


def _annotation(filename: str, extra: str = "", width: str = "64") -> str:
    return (f"<annotation><filename>{filename}</filename><size><width>{width}</width><height>48</height></size>"
            f"<object><name>cell</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
            f"</object>{extra}</annotation>")


def test_voc_filename_outside_the_dataset_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.jpg").write_bytes(make_image_bytes(seed=2))
    root = _voc(tmp_path / "ds", _annotation("../../secret.jpg"))
    (root / "Annotations" / "b.xml").write_text(_annotation(str(tmp_path / "secret.jpg")))
    (root / "Annotations" / "c.xml").write_text(_annotation("x" * 5000))
    (root / "Annotations" / "d.xml").write_text(_annotation("a.jpg", width="1e400"))
    ds = voc.load(root)
    assert [s.image_path for s in ds.samples] == [root / "JPEGImages" / "a.jpg"]
    assert ds.samples[0].width is None  # an infinite width is no width
    refused = [q for q in ds.problems if "not imported" in q.reason]
    assert sorted(q.path for q in refused) == ["Annotations/a.xml", "Annotations/b.xml", "Annotations/c.xml"]
    assert any("'../../secret.jpg'" in q.reason for q in refused)  # the problem names the refused name


def test_voc_xml_entities_and_external_references_are_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_bytes(SECRET)
    laughs = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;">'
              '<!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;">]>' + _annotation("a.jpg", "<pose>&l3;</pose>"))
    xxe = (f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{tmp_path / "outside.txt"}">]>'
           + _annotation("a.jpg", "<pose>&x;</pose>"))
    root = _voc(tmp_path / "ds", laughs)
    (root / "Annotations" / "b.xml").write_text(xxe)
    ds = voc.load(root)
    assert ds.samples == []
    assert len([q for q in ds.problems if "not readable as XML" in q.reason]) == 2
    assert not any(SECRET.decode() in q.reason for q in ds.problems)


def test_csv_image_names_outside_the_dataset_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.jpg").write_bytes(make_image_bytes(seed=2))
    root = tmp_path / "ds"
    root.mkdir()
    (root / "ok.jpg").write_bytes(make_image_bytes(seed=1))
    (root / "labels.csv").write_text("image,label\nok.jpg,cat\n../secret.jpg,dog\n" + "y" * 5000 + ".jpg,dog\n"
                                     f"{tmp_path / 'secret.jpg'},dog\n")
    ds = csv_table.load(root / "labels.csv")
    assert [s.name for s in ds.samples] == ["ok.jpg"]
    refused = [q.reason for q in ds.problems if "not imported" in q.reason]
    assert len(refused) == 3 and any("'../secret.jpg'" in r for r in refused)


def test_yolo_yaml_bomb_is_reported_and_the_labels_still_load(tmp_path: Path, formats_dir: Path) -> None:
    root = tmp_path / "yolo"
    shutil.copytree(formats_dir / "yolo_dataset" / "labels", root)
    for f in root.glob("*.yaml"):
        f.unlink()
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for k in range(1, 9):
        prev, cur = chr(ord("a") + k - 1), chr(ord("a") + k)
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    lines.append("names: *i")
    (root / "data.yaml").write_text("\n".join(lines))
    ds = yolo.load(root)
    assert any(q.path == "data.yaml" and "YAML bomb" in q.reason for q in ds.problems)
    assert len(ds.samples) == 2 and ds.classes == [f"label_{i}" for i in range(10)]  # from obj.names
    (root / "data.yaml").write_text("names: {99999999999: a}\n")
    ds = yolo.load(root)
    assert any("'names' must be" in q.reason for q in ds.problems)


def test_yolo_huge_or_infinite_class_ids_are_reported(tmp_path: Path, formats_dir: Path) -> None:
    root = tmp_path / "yolo"
    shutil.copytree(formats_dir / "yolo_dataset" / "labels", root)
    (root / "obj.names").unlink()  # no names: classes would be class_0..class_<max id>
    label = next((root / "labels").rglob("*.txt"))
    label.write_text("1" * 400 + " 0.5 0.5 0.1 0.1\n999999999 0.5 0.5 0.1 0.1\n-0 0.5 0.5 0.2 0.2\n")
    ds = yolo.load(root)
    assert len([q for q in ds.problems if "is not an integer 0..100000" in q.reason]) == 2
    assert len(ds.classes) < 100


def test_semantic_label_map_with_a_huge_index_is_reported(tmp_path: Path, formats_dir: Path) -> None:
    import json

    from visionloop.formats import semantic_masks

    root = tmp_path / "sem"
    shutil.copytree(formats_dir / "common_semantic_segmentation_dataset" / "dataset", root)
    meta = json.loads((root / "dataset_meta.json").read_text())
    meta["label_map"]["1" * 30] = "huge"
    (root / "dataset_meta.json").write_text(json.dumps(meta))
    ds = semantic_masks.load(root)
    assert "huge" not in ds.classes and any("outside 0..65535" in q.reason for q in ds.problems)
