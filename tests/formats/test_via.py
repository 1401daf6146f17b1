"""VGG Image Annotator. No VIA sample exists in shared/formats, so ``assets/via`` holds a VIA 2.0.10 project JSON and
the CSV export of the same annotations, written to VIA's documented formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _roundtrip import assert_same_dataset

from visionloop.core.annotations import RLE, Boxes, Instances, Label, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import detect_format, via
from visionloop.formats.base import FormatDataset, Sample

ASSET = Path(__file__).parent / "assets" / "via"


def test_project_json() -> None:
    assert detect_format(ASSET / "project") == ("via", 0.95)
    ds = via.load(ASSET / "project")
    assert ds.task == Task.SEGMENTATION
    assert ds.classes == ["cat", "dog", "bird"]  # class attribute "species" (a dropdown) picked over "pose"
    one = {s.name: s for s in ds.samples}["pets_001.jpg"]
    assert one.meta["file_attributes"] == {"scene": "indoor"}
    inst = one.annotation
    assert isinstance(inst, Instances) and len(inst) == 3  # the point region is skipped
    assert inst.boxes.xyxy[0].tolist() == [12, 9, 42, 31]
    assert inst.boxes.attributes[0] == {"pose": "sitting", "shape": "rectangle"}
    assert inst.segmentations[1] == [[50.0, 10.0, 70.0, 12.0, 76.0, 40.0, 58.0, 38.0]]
    assert sorted(p.action for p in ds.problems) == ["clipped", "skipped"]


def test_csv_equals_json() -> None:
    assert detect_format(ASSET / "csv") == ("via", 0.95)
    assert_same_dataset(via.load(ASSET / "project"), via.load(ASSET / "csv"))


@pytest.mark.parametrize("sub", ["project", "csv"])
def test_roundtrip(tmp_path: Path, sub: str) -> None:
    ds = via.load(ASSET / sub)
    via.save(ds, tmp_path)
    assert detect_format(tmp_path)[0] == "via"
    again = via.load(tmp_path)
    assert_same_dataset(ds, again)
    assert again.samples[0].meta["file_attributes"] == ds.samples[0].meta["file_attributes"]
    assert all(s.image_path is not None for s in again.samples)


def test_annotation_export_v1_regions_dict_and_class_key(tmp_path: Path, image_factory) -> None:
    image_factory("a.jpg", width=30, height=20)
    (tmp_path / "via_region_data.json").write_text(json.dumps({"a.jpg1234": {
        "filename": "a.jpg", "size": 1234, "file_attributes": {}, "regions": {
            "0": {"shape_attributes": {"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4},
                  "region_attributes": {"name": "cup", "colour": "red"}},
            "1": {"shape_attributes": {"name": "rect", "x": 5, "y": 5, "width": 5, "height": 5},
                  "region_attributes": {"name": {"plate": True, "bowl": False}}},
            "2": {"shape_attributes": {"name": "rect", "x": 5, "y": 5, "width": 5, "height": 5},
                  "region_attributes": {"colour": "blue"}}}}}))
    ds = via.load(tmp_path)
    assert ds.task == Task.DETECTION and ds.classes == ["cup", "plate"]
    b = ds.samples[0].annotation
    assert isinstance(b, Boxes) and b.xyxy.tolist() == [[1, 2, 4, 6], [5, 5, 10, 10]]
    assert b.attributes == [{"colour": "red"}, {}]
    assert any("no class" in p.reason for p in ds.problems)


def test_masks_become_polygons(tmp_path: Path) -> None:
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    ds = FormatDataset(task=Task.SEGMENTATION, classes=["blob"], samples=[Sample(
        name="m.png", width=30, height=20,
        annotation=Instances(Boxes([[10, 5, 20, 15]], [0]), [RLE.encode(mask)]))])
    via.save(ds, tmp_path)
    again = via.load(tmp_path)
    seg = again.samples[0].annotation
    assert np.allclose(seg.boxes.xyxy, [[10, 5, 20, 15]], atol=0.5)
    assert (seg.mask(0, 20, 30) == mask).mean() > 0.95


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="VIA"):
        via.load(tmp_path)
    (tmp_path / "via.csv").write_text(",".join(via.CSV_HEADER) + "\na.jpg,1,{},1,0,\"{\"\"name\"\":\"\"rect\"\"\n")
    with pytest.raises(FormatError, match="could be read"):
        via.load(tmp_path)
    (tmp_path / "via.csv").write_text(
        ",".join(via.CSV_HEADER) + '\ngone.jpg,1,{},2,0,"{""name"":""polygon"",""all_points_x"":[1],'
        '""all_points_y"":[1]}","{""label"":""x""}"\ngone.jpg,1,{},2,1,"{""name"":""rect"",""x"":1,""y"":1,'
        '""width"":2,""height"":2}","{""label"":""x""}"\n')
    ds = via.load(tmp_path)
    reasons = " | ".join(p.reason for p in ds.problems)
    assert "not found" in reasons and "needs >= 3" in reasons
    assert len(ds.samples[0].annotation) == 1


def test_detect_ignores_other_csv_and_json(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("filename,label\na.jpg,cat\n")
    (tmp_path / "coco.json").write_text(json.dumps({"images": [], "annotations": []}))
    assert via.detect(tmp_path) == 0.0


def _real_project(tmp_path: Path) -> tuple[Path, dict]:
    dest = tmp_path / "via"
    dest.mkdir()
    src = next((ASSET / "project").glob("*.json"))
    doc = json.loads(src.read_text())
    for f in (ASSET / "project").iterdir():
        if f.suffix != ".json":
            (dest / f.name).write_bytes(f.read_bytes())
    return dest / src.name, doc


def test_regions_without_class_leave_the_image_unlabelled(tmp_path: Path) -> None:
    path, doc = _real_project(tmp_path)
    for region in doc["_via_img_metadata"]["pets_002.jpg3744"]["regions"]:
        region["region_attributes"].pop("species", None)
    path.write_text(json.dumps(doc))
    ds = via.load(path.parent)
    by = {s.name: s for s in ds.samples}
    assert by["pets_002.jpg"].annotation is None  # drawn but unnamed objects: not a negative
    assert len(by["pets_001.jpg"].annotation) == 3
    assert any(p.action == "kept unlabelled" and "pets_002.jpg" in p.path for p in ds.problems)


@pytest.mark.parametrize("task", [Task.CLASSIFICATION, Task.TAGGING])
def test_image_labels_survive_export(tmp_path: Path, task: Task) -> None:
    path, doc = _real_project(tmp_path)
    images = sorted((path.parent).glob("*.jpg"))
    labels = [Label(1), Label(0)] if task is Task.CLASSIFICATION else [Tags(frozenset({0, 2})), Tags(frozenset())]
    ds = FormatDataset(task=task, classes=["cat", "dog", "bird"], samples=[
        Sample(name=p.name, image_path=p, annotation=a) for p, a in zip(images, labels, strict=True)])
    via.save(ds, tmp_path / "out")
    again = via.load(tmp_path / "out")
    assert again.task is task
    got = {s.name: {again.classes[c] for c in ([s.annotation.class_id] if isinstance(s.annotation, Label)
                                               else s.annotation.class_ids)} for s in again.samples}
    want = {s.name: {ds.classes[c] for c in ([s.annotation.class_id] if isinstance(s.annotation, Label)
                                             else s.annotation.class_ids)} for s in ds.samples}
    assert got == want
    exported = json.loads((tmp_path / "out" / "via_project.json").read_text())
    assert exported["_via_attributes"]["file"]["label"]["type"] == "checkbox"


def test_free_text_file_attribute_is_not_a_class(tmp_path: Path) -> None:
    path, doc = _real_project(tmp_path)
    for entry in doc["_via_img_metadata"].values():
        entry["regions"] = []  # the real file attribute "scene" is free text
    path.write_text(json.dumps(doc))
    ds = via.load(path.parent)
    assert ds.task is Task.DETECTION and all(len(s.annotation) == 0 for s in ds.samples)
