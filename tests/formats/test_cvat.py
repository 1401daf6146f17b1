from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from _roundtrip import assert_same_dataset, image_bytes_equal

from visionloop.core.annotations import RLE, Boxes, Instances, Label, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import cvat, detect_format
from visionloop.formats.base import FormatDataset, Sample
from visionloop.formats.exporter import export_project
from visionloop.ingest.importer import import_source

CVAT = "cvat_dataset"


def _roundtrip(src: Path, tmp_path: Path) -> tuple[FormatDataset, FormatDataset]:
    first = cvat.load(src)
    cvat.save(first, tmp_path / "out")
    second = cvat.load(tmp_path / "out")
    assert_same_dataset(first, second)
    return first, second


def test_images_task_export(formats_dir: Path, tmp_path: Path) -> None:
    src = formats_dir / CVAT / "for_images/export_task"
    assert detect_format(src)[0] == "cvat"
    ds, again = _roundtrip(src, tmp_path)
    assert ds.task == Task.DETECTION
    assert ds.classes[:2] == ["label1", "label2"]
    by = {s.name: s for s in ds.samples}
    box = by["img0.jpg"].annotation
    assert isinstance(box, Boxes) and box.xyxy.tolist() == [[0, 2, 4, 4]]
    assert box.attributes == [{"a1": "true", "a2": "v3", "a3": "0003", "a4": "2.4", "occluded": True}]
    assert (by["img0.jpg"].width, by["img0.jpg"].height) == (8, 8)
    assert len(by["img1.jpg"].annotation) == 0  # its polygon has no label, its points no area
    reasons = " ".join(p.reason for p in ds.problems)
    assert "<polyline>" in reasons and "<points>" in reasons and "no label" in reasons
    assert all(image_bytes_equal(s.image_path, t.image_path) for s, t in zip(ds.samples, again.samples, strict=True))


def test_images_project_export_with_subsets(formats_dir: Path, tmp_path: Path) -> None:
    ds, again = _roundtrip(formats_dir / CVAT / "for_images/export_project", tmp_path)
    assert ds.task == Task.SEGMENTATION
    assert sorted(s.name for s in ds.samples) == sorted(
        f"{sub}/img{i}.jpg" for sub in ("Test", "Train", "Validation") for i in (0, 1))
    assert {s.subset for s in again.samples} == {"Test", "Train", "Validation"}
    assert all(s.image_path is not None for s in ds.samples + again.samples)
    poly = next(s for s in ds.samples if s.name == "Train/img1.jpg").annotation
    assert isinstance(poly, Instances) and poly.segmentations == [[[1.0, 2.0, 3.0, 4.0, 6.0, 5.0]]]
    rect = next(s for s in again.samples if s.name == "Train/img0.jpg").annotation
    assert rect.boxes.attributes[0]["shape"] == "rectangle"  # a box in a segmentation dataset stays a box
    assert '<box label="label1"' in (tmp_path / "out/annotations.xml").read_text()


def test_video_tracks(formats_dir: Path, tmp_path: Path) -> None:
    src = formats_dir / CVAT / "for_video"
    assert detect_format(src)[0] == "cvat"
    ds, again = _roundtrip(src, tmp_path)
    assert ds.task == Task.DETECTION
    assert [(s.video_id, s.frame_index) for s in ds.samples] == [("t.mp4", 10), ("t.mp4", 13), ("t.mp4", 16)]
    first = ds.samples[0].annotation
    assert first.xyxy.tolist() == [[3, 4, 10, 5]] and first.track_id.tolist() == [0]
    assert ds.classes[first.class_id[0]] == "II"
    assert [len(s.annotation) for s in ds.samples] == [1, 0, 0]  # outside="1" from frame 13 on
    assert all(s.image_path is not None for s in again.samples)


def test_video_interpolates_between_keyframes(tmp_path: Path, image_factory) -> None:
    for f in range(0, 5):
        image_factory(f"v/images/frame_{f:06d}.png", width=50, height=40)
    (tmp_path / "v/annotations.xml").write_text("""<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
<meta><task><mode>interpolation</mode><original_size><width>50</width><height>40</height></original_size>
<labels><label><name>car</name></label></labels></task><source>cam.mp4</source></meta>
<track id="7" label="car">
  <box frame="0" outside="0" occluded="0" keyframe="1" xtl="0" ytl="0" xbr="10" ybr="10" z_order="0"/>
  <box frame="2" outside="0" occluded="0" keyframe="1" xtl="10" ytl="0" xbr="20" ybr="10" z_order="0"/>
  <box frame="4" outside="1" occluded="0" keyframe="1" xtl="10" ytl="0" xbr="20" ybr="10" z_order="0"/>
</track></annotations>""")
    ds = cvat.load(tmp_path / "v")
    got = [s.annotation.xyxy.tolist() for s in ds.samples]
    assert got == [[[0, 0, 10, 10]], [[5, 0, 15, 10]], [[10, 0, 20, 10]], [[10, 0, 20, 10]], []]
    assert all(s.annotation.track_id.tolist() == [7] for s in ds.samples[:4])
    cvat.save(ds, tmp_path / "out")
    assert_same_dataset(ds, cvat.load(tmp_path / "out"))


def test_tags_masks_and_grouped_polygons(tmp_path: Path, image_factory) -> None:
    image_factory("d/images/a.jpg", width=20, height=10)
    image_factory("d/images/b.jpg", width=20, height=10)
    (tmp_path / "d/annotations.xml").write_text("""<annotations><version>1.1</version>
<image id="0" name="a.jpg" width="20" height="10">
  <mask label="cell" source="manual" occluded="0" rle="1, 2, 2, 1" left="3" top="2" width="3" height="2" z_order="0"/>
  <polygon label="cell" points="0,0;4,0;4,4" group_id="5"/>
  <polygon label="cell" points="10,0;14,0;14,4" group_id="5"/>
  <box label="cell" xtl="12" ytl="5" xbr="25" ybr="9"/>
  <tag label="blurry"/>
</image>
<image id="1" name="b.jpg" width="20" height="10"/>
</annotations>""")
    ds = cvat.load(tmp_path / "d")
    assert ds.task == Task.SEGMENTATION
    a = ds.samples[0]
    assert a.meta["tags"] == ["blurry"]
    inst = a.annotation
    assert len(inst) == 3
    mask = inst.segmentations[0]
    assert isinstance(mask, RLE)
    expected = np.zeros((10, 20), bool)
    expected[2, 4:6] = True
    expected[3, 5] = True
    assert np.array_equal(mask.decode(), expected)
    assert len(inst.segmentations[1]) == 2  # one instance of two rings (same group_id)
    assert inst.boxes.xyxy[2].tolist() == [12, 5, 20, 9]
    assert any(p.action == "clipped" for p in ds.problems)
    cvat.save(ds, tmp_path / "out")
    again = cvat.load(tmp_path / "out")
    assert_same_dataset(ds, again)
    assert again.samples[0].meta["tags"] == ["blurry"]


def test_classification_from_tags(tmp_path: Path) -> None:
    ds = FormatDataset(task=Task.CLASSIFICATION, classes=["cat", "dog"], samples=[
        Sample(name="x.jpg", annotation=Label(1), width=4, height=4),
        Sample(name="y.jpg", annotation=Label(0), width=4, height=4)])
    cvat.save(ds, tmp_path)
    again = cvat.load(tmp_path)
    assert again.task == Task.CLASSIFICATION
    assert_same_dataset(ds, again)
    assert {p.reason.split(" ")[0] for p in again.problems} == {"image"}  # images missing, reported
    tags = FormatDataset(task=Task.TAGGING, classes=["a", "b"], samples=[
        Sample(name="x.jpg", annotation=Tags(frozenset({0, 1})), width=4, height=4)])
    cvat.save(tags, tmp_path / "t")
    assert cvat.load(tmp_path / "t").task == Task.TAGGING


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="CVAT XML"):
        cvat.load(tmp_path)
    (tmp_path / "annotations.xml").write_text("<annotations><version>1.1</version><image id='0' name='a.jpg'")
    assert cvat.detect(tmp_path) > 0
    with pytest.raises(FormatError, match="could be parsed"):
        cvat.load(tmp_path)
    (tmp_path / "annotations.xml").write_text("""<annotations><version>1.1</version>
<image id="0" name="gone.jpg" width="10" height="10"><box label="x" xtl="5" ytl="1" xbr="2" ybr="3"/>
<polygon label="x" points="1,1;2"/></image></annotations>""")
    ds = cvat.load(tmp_path)
    reasons = [p.reason for p in ds.problems]
    assert any("not found" in r for r in reasons)
    assert any("bad corners" in r for r in reasons)
    assert len(ds.samples) == 1 and len(ds.samples[0].annotation) == 0


def test_detect_does_not_claim_voc(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "a.xml").write_text("<annotation><filename>a.jpg</filename></annotation>")
    assert cvat.detect(tmp_path) == 0.0
    assert cvat.detect(tmp_path / "missing") == 0.0


def _with_tags(formats_dir: Path, tmp_path: Path, *, shapes: bool) -> Path:
    """The real CVAT task export with ``<tag>`` elements added (CVAT writes them for image-level labels)."""
    src = tmp_path / "cvat"
    src.mkdir()
    real = formats_dir / CVAT / "for_images/export_task"
    for f in real.rglob("*"):
        if f.is_file():
            (src / f.relative_to(real)).parent.mkdir(parents=True, exist_ok=True)
            (src / f.relative_to(real)).write_bytes(f.read_bytes())
    xml = src / "train.xml"
    text = xml.read_text()
    if not shapes:
        text = re.sub(r"<(box|polygon|polyline|points)\b[^>]*?/>", "", text)
        text = re.sub(r"<box\b.*?</box>", "", text, flags=re.S)
    text = text.replace('name="img0.jpg" width="8">', 'name="img0.jpg" width="8">\n<tag label="label1" source="manual"/>'
                        '<tag label="label2" source="manual"/>')
    text = text.replace('name="img1.jpg" width="10">', 'name="img1.jpg" width="10">\n<tag label="label2"/>')
    xml.write_text(text)
    return src


def test_tags_of_a_detection_task_survive_import_and_export(formats_dir: Path, tmp_path: Path,
                                                             project_factory) -> None:
    src = _with_tags(formats_dir, tmp_path, shapes=True)
    ds = cvat.load(src)
    assert ds.task is Task.DETECTION
    assert {s.name: s.meta.get("tags") for s in ds.samples} == {"img0.jpg": ["label1", "label2"],
                                                                "img1.jpg": ["label2"]}
    project = project_factory("detection")
    import_source(project, src)
    export_project(project, tmp_path / "out", format="cvat")
    again = cvat.load(tmp_path / "out")
    assert {s.name: s.meta.get("tags") for s in again.samples} == {"img0.jpg": ["label1", "label2"],
                                                                   "img1.jpg": ["label2"]}
    assert len(next(s for s in again.samples if s.name == "img0.jpg").annotation) == 1  # the box is still there


def test_tags_only_task_is_tagging_and_round_trips(formats_dir: Path, tmp_path: Path, project_factory) -> None:
    src = _with_tags(formats_dir, tmp_path, shapes=False)
    ds = cvat.load(src)
    assert ds.task is Task.TAGGING
    names = {s.name: {ds.classes[c] for c in s.annotation.class_ids} for s in ds.samples}
    assert names == {"img0.jpg": {"label1", "label2"}, "img1.jpg": {"label2"}}
    project = project_factory("tagging")
    import_source(project, src)
    export_project(project, tmp_path / "out", format="cvat")
    again = cvat.load(tmp_path / "out")
    assert {s.name: {again.classes[c] for c in s.annotation.class_ids} for s in again.samples} == names


def test_control_characters_in_names_still_give_readable_xml(tmp_path: Path) -> None:
    ds = FormatDataset(task=Task.DETECTION, classes=["a\x01b", "ok"], samples=[
        Sample(name="x.jpg", annotation=Boxes([[1, 1, 2, 2], [0, 0, 3, 3]], [0, 1]), width=4, height=4)])
    cvat.save(ds, tmp_path)
    again = cvat.load(tmp_path)
    assert again.classes == ["a_b", "ok"] and len(again.samples[0].annotation) == 2
