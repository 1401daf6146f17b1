"""LabelMe JSON (wkentaro/labelme). shared/formats holds only the old MIT LabelMe XML, so ``assets/labelme`` is a
fixture written to the labelme tool's documented JSON schema (version, flags, shapes[label, points, group_id,
description, shape_type, flags, mask], imagePath, imageData, imageHeight, imageWidth)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from _roundtrip import assert_same_dataset
from PIL import Image

from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import detect_format, labelme
from visionloop.formats.base import FormatDataset, Sample
from visionloop.ingest.importer import import_source

ASSET = Path(__file__).parent / "assets" / "labelme"


def test_load_fixture() -> None:
    assert detect_format(ASSET)[0] == "labelme"
    ds = labelme.load(ASSET)
    assert ds.task == Task.SEGMENTATION
    assert ds.classes == ["car", "person", "sign", "tree"]
    by = {s.name: s for s in ds.samples}
    assert sorted(by) == ["night/street_03.jpg", "street_01.jpg", "street_02.png"]
    one = by["street_01.jpg"].annotation
    assert isinstance(one, Instances) and len(one) == 4  # the line is skipped
    assert one.boxes.attributes[0] == {"flags": {"occluded": True}, "shape": "rectangle"}
    assert np.allclose(one.boxes.xyxy[2], [74, 6, 86, 18])  # circle of radius 6 around (80, 12)
    assert len(one.segmentations[3]) == 2  # two polygons of group 1 are one tree
    mask = by["street_02.png"].annotation.segmentations[1]
    assert isinstance(mask, RLE) and mask.area() == 7 * 9 - 1
    assert by["night/street_03.jpg"].image_data is not None  # from imageData, in memory
    actions = sorted(p.action for p in ds.problems)
    assert actions == ["clipped", "repaired", "skipped"]


def test_roundtrip(tmp_path: Path) -> None:
    ds = labelme.load(ASSET)
    labelme.save(ds, tmp_path)
    assert (tmp_path / "night" / "street_03.json").is_file()
    assert detect_format(tmp_path)[0] == "labelme"
    again = labelme.load(tmp_path)
    assert_same_dataset(ds, again)
    doc = json.loads((tmp_path / "street_02.json").read_text())
    assert [s["shape_type"] for s in doc["shapes"]] == ["rectangle", "mask"]
    assert doc["imagePath"] == "street_02.png" and doc["imageData"] is None


def test_rectangles_only_is_detection(tmp_path: Path, image_factory) -> None:
    image_factory("a.jpg", width=40, height=30)
    (tmp_path / "a.json").write_text(json.dumps({
        "version": "5.4.1", "flags": {"day": True}, "imagePath": "a.jpg", "imageData": None, "imageHeight": 30,
        "imageWidth": 40, "shapes": [{"label": "car", "points": [[30, 20], [5, 2]], "group_id": None,
                                      "description": "", "shape_type": "rectangle", "flags": {}}]}))
    ds = labelme.load(tmp_path)
    assert ds.task == Task.DETECTION
    b = ds.samples[0].annotation
    assert isinstance(b, Boxes) and b.xyxy.tolist() == [[5, 2, 30, 20]]
    assert ds.samples[0].meta["flags"] == {"day": True}
    labelme.save(ds, tmp_path / "out")
    assert_same_dataset(ds, labelme.load(tmp_path / "out"))


def test_flags_classification_and_tagging(tmp_path: Path, image_factory) -> None:
    cls = FormatDataset(task=Task.CLASSIFICATION, classes=["cat", "dog"], samples=[
        Sample(name="a.jpg", image_path=image_factory("src/a.jpg"), annotation=Label(1)),
        Sample(name="b.jpg", image_path=image_factory("src/b.jpg"), annotation=Label(0))])
    labelme.save(cls, tmp_path / "c")
    again = labelme.load(tmp_path / "c")
    assert again.task == Task.CLASSIFICATION and again.classes == ["cat", "dog"]
    assert_same_dataset(cls, again)
    tags = FormatDataset(task=Task.TAGGING, classes=["sun", "rain"], samples=[
        Sample(name="a.jpg", image_path=tmp_path / "src/a.jpg", annotation=Tags(frozenset({0, 1})))])
    labelme.save(tags, tmp_path / "t")
    assert labelme.load(tmp_path / "t").task == Task.TAGGING


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="LabelMe JSON"):
        labelme.load(tmp_path)
    (tmp_path / "bad.json").write_text('{"shapes": [], "imagePath": "x.jpg", ')
    (tmp_path / "ok.json").write_text(json.dumps({"shapes": [
        {"label": "", "points": [[0, 0], [1, 1]], "shape_type": "rectangle"},
        {"label": "a", "points": [[0, 0]], "shape_type": "polygon"},
        {"label": "a", "points": [[0, 0], [1, 1]], "shape_type": "weird"}], "imagePath": "missing.jpg",
        "imageHeight": 10, "imageWidth": 10}))
    ds = labelme.load(tmp_path)
    reasons = " | ".join(p.reason for p in ds.problems)
    assert "unreadable LabelMe file" in reasons and "no label" in reasons and "needs >= 3" in reasons
    assert "unknown shape_type" in reasons and "not found" in reasons
    assert [s.name for s in ds.samples] == ["missing.jpg"]


def test_detect_ignores_coco(tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances.json").write_text(json.dumps({"images": [], "annotations": []}))
    assert labelme.detect(tmp_path) == 0.0


def test_wrong_image_path_uses_embedded_image_data(tmp_path: Path, project_factory) -> None:
    """A file whose imagePath names another machine's file still gives its image from imageData, decoded in memory:
    nothing is written to a temporary folder."""
    src = tmp_path / "data"
    src.mkdir()
    image = (ASSET / "street_01.jpg").read_bytes()
    doc = json.loads((ASSET / "street_01.json").read_text())
    doc.update(imagePath="C:\\Users\\ann\\Pictures\\IMG_0001.jpg", imageData=base64.b64encode(image).decode(),
               imageWidth=None, imageHeight=None)
    (src / "annotation_7.json").write_text(json.dumps(doc))
    ds = labelme.load(src)
    (sample,) = ds.samples
    assert sample.image_path is None and sample.image_data == image  # in memory, no file written
    assert (sample.width, sample.height) == Image.open(ASSET / "street_01.jpg").size  # measured from the bytes
    assert sample.name == "IMG_0001.jpg" and isinstance(sample.annotation, Instances)
    assert any(p.action == "repaired" and "imageData" in p.reason for p in ds.problems)
    project = project_factory("segmentation")
    assert import_source(project, src).images_added == 1
    (stored,) = project.images()
    assert stored.sha256 == hashlib.sha256(image).hexdigest()


def _labelme2voc(root: Path, *, old: bool) -> Path:
    """The output of labelme's ``labelme2voc.py`` for street_01: class_names.txt, JPEGImages/, palette masks in
    SegmentationClass/ (labelme 5) or SegmentationClassPNG/ (labelme < 5, with .npy files in SegmentationClass/)."""
    out = root / "data_dataset_voc"
    (out / "JPEGImages").mkdir(parents=True)
    (out / "JPEGImages" / "street_01.jpg").write_bytes((ASSET / "street_01.jpg").read_bytes())
    (out / "class_names.txt").write_text("_background_\ncar\nperson\nsign\ntree")
    w, h = Image.open(ASSET / "street_01.jpg").size
    lbl = np.zeros((h, w), dtype=np.uint8)
    lbl[2:10, 3:20] = 1
    lbl[20:30, 5:9] = 4
    lbl[0, 0] = 255
    png = Image.fromarray(lbl, mode="P")
    png.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [0] * (3 * 251))
    masks = out / ("SegmentationClassPNG" if old else "SegmentationClass")
    masks.mkdir(exist_ok=True)
    png.save(masks / "street_01.png")
    if old:
        (out / "SegmentationClass").mkdir()
        np.save(out / "SegmentationClass" / "street_01.npy", lbl.astype(np.int32))
    (out / "SegmentationClassVisualization").mkdir()
    png.convert("RGB").save(out / "SegmentationClassVisualization" / "street_01.jpg")
    return out


@pytest.mark.parametrize("old", [False, True])
def test_labelme2voc_output_keeps_its_class_names(tmp_path: Path, old: bool, project_factory) -> None:
    out = _labelme2voc(tmp_path, old=old)
    assert detect_format(out)[0] == "labelme"  # not plain image/mask folders with class_0..class_4
    ds = labelme.load(out)
    assert ds.classes == ["_background_", "car", "person", "sign", "tree"]
    (sample,) = ds.samples
    assert isinstance(sample.annotation, SemanticMask)
    assert sample.annotation.class_ids() == [0, 1, 4] and sample.annotation.mask[0, 0] == 255
    project = project_factory("segmentation")
    report = import_source(project, out)
    assert report.format == "labelme" and report.images_added == 1
    assert {"car", "tree"} <= set(project.ontology().names)
    assert not any(n.startswith("class_") for n in project.ontology().names)
