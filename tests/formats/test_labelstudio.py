"""Label Studio JSON export. No Label Studio sample exists in shared/formats, so ``assets/labelstudio`` is a fixture
written to Label Studio's documented export schema (labelstud.io/guide/task_format, tags/rectanglelabels,
tags/polygonlabels); its brush RLE was produced by label-studio-converter's ``encode_rle`` algorithm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _roundtrip import assert_same_dataset

from visionloop.core.annotations import RLE, Boxes, Instances, Label, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import detect_format, labelstudio
from visionloop.formats._lsrle import decode_brush, encode_brush
from visionloop.formats.base import FormatDataset, Sample

ASSET = Path(__file__).parent / "assets" / "labelstudio"


def test_load_fixture() -> None:
    assert detect_format(ASSET) == ("labelstudio", 0.9)
    ds = labelstudio.load(ASSET)
    assert ds.task == Task.SEGMENTATION
    assert ds.classes == ["RBC", "WBC", "Platelets"]
    by = {s.name: s for s in ds.samples}
    assert sorted(by) == ["cells_01.png", "cells_02.png", "cells_03.jpg"]  # upload prefix 5e1c2f0a- stripped
    assert all(s.image_path is not None for s in ds.samples)
    one = by["cells_01.png"].annotation
    assert isinstance(one, Instances)
    assert np.allclose(one.boxes.xyxy, [[8, 5, 24, 20], [52, 30, 64, 40], [30, 4, 44, 16]])  # % -> px, clipped
    assert np.allclose(one.segmentations[2][0], [32, 4, 44, 6, 40, 16, 30, 14])
    brush = by["cells_02.png"].annotation.segmentations[0]
    assert isinstance(brush, RLE)
    expected = np.zeros((60, 80), bool)
    expected[20:35, 30:52] = True
    expected[25:30, 40:45] = False
    assert np.array_equal(brush.decode(), expected)
    assert by["cells_03.jpg"].annotation is None  # only a cancelled annotation and a prediction
    assert [p.action for p in ds.problems] == ["clipped"]


def test_roundtrip(tmp_path: Path) -> None:
    ds = labelstudio.load(ASSET)
    labelstudio.save(ds, tmp_path)
    assert detect_format(tmp_path)[0] == "labelstudio"
    again = labelstudio.load(tmp_path)
    assert_same_dataset(ds, again)
    tasks = json.loads((tmp_path / "result.json").read_text())
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=images/cells_01.png"
    assert {r["type"] for t in tasks for a in t["annotations"] for r in a["result"]} == {
        "rectanglelabels", "polygonlabels", "brushlabels"}


def test_brush_rle_roundtrip_large() -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((300, 410), bool)
    mask[50:250, 20:400] = True  # runs longer than 2**16 values
    mask[rng.random(mask.shape) > 0.995] = False
    assert np.array_equal(decode_brush(encode_brush(mask), 300, 410), mask)
    with pytest.raises(ValueError, match="holds"):
        decode_brush(encode_brush(mask), 10, 10)


def test_choices_classification_and_tagging(tmp_path: Path) -> None:
    ds = FormatDataset(task=Task.CLASSIFICATION, classes=["cat", "dog"], samples=[
        Sample(name="a.jpg", annotation=Label(0)), Sample(name="b.jpg", annotation=Label(1))])
    labelstudio.save(ds, tmp_path / "c")
    again = labelstudio.load(tmp_path / "c")
    assert again.task == Task.CLASSIFICATION
    assert_same_dataset(ds, again)
    tags = FormatDataset(task=Task.TAGGING, classes=["sun", "rain"], samples=[
        Sample(name="a.jpg", annotation=Tags(frozenset({0, 1}))), Sample(name="b.jpg", annotation=Tags())])
    labelstudio.save(tags, tmp_path / "t")
    again = labelstudio.load(tmp_path / "t")
    assert again.task == Task.TAGGING
    assert_same_dataset(tags, again)


def test_detection_only_and_rotation(tmp_path: Path, image_factory) -> None:
    image_factory("images/p.jpg", width=100, height=50)
    tasks = [{"id": 1, "data": {"image": "http://example.com/media/p.jpg"}, "annotations": [{"id": 1, "result": [
        {"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 100,
         "original_height": 50, "value": {"x": 10, "y": 20, "width": 20, "height": 40, "rotation": 0,
                                          "rectanglelabels": ["car"]}},
        {"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 100,
         "original_height": 50, "value": {"x": 50, "y": 0, "width": 10, "height": 10, "rotation": 90,
                                          "rectanglelabels": ["car"]}},
        {"type": "keypointlabels", "value": {"x": 1, "y": 1, "keypointlabels": ["car"]}}]}]}]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    ds = labelstudio.load(tmp_path / "export.json")
    assert ds.task == Task.DETECTION
    boxes = ds.samples[0].annotation
    assert isinstance(boxes, Boxes) and np.allclose(boxes.xyxy, [[10, 10, 30, 30], [45, 0, 50, 10]])
    assert {p.action for p in ds.problems} == {"repaired", "skipped"}
    labelstudio.save(ds, tmp_path / "out")
    assert_same_dataset(ds, labelstudio.load(tmp_path / "out"))


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="Label Studio JSON export"):
        labelstudio.load(tmp_path)
    (tmp_path / "a.json").write_text('[{"data": {"image": "x.jpg"}, "annotations": [{"result": [')
    with pytest.raises(FormatError, match="could be read"):
        labelstudio.load(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps([
        {"data": {}, "annotations": [{"result": []}]},
        {"data": {"image": "/data/upload/1/abcdef12-missing.jpg"}, "annotations": [{"result": [
            {"type": "polygonlabels", "original_width": 10, "original_height": 10,
             "value": {"points": [[1, 1]], "polygonlabels": ["x"]}},
            {"type": "brushlabels", "original_width": 10, "original_height": 10,
             "value": {"format": "rle", "rle": [0, 0, 1], "brushlabels": ["x"]}}]}]}]))
    ds = labelstudio.load(tmp_path)
    reasons = " | ".join(p.reason for p in ds.problems)
    assert "no data.image" in reasons and "not found" in reasons and "needs >= 3" in reasons
    assert "brushlabels" in reasons
    assert [s.name for s in ds.samples] == ["missing.jpg"]


def test_detect_ignores_coco_and_labelme(tmp_path: Path) -> None:
    (tmp_path / "instances.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    (tmp_path / "x.json").write_text(json.dumps({"shapes": [], "imagePath": "x.jpg"}))
    assert labelstudio.detect(tmp_path) == 0.0


def _literal_brush(values: np.ndarray, block: int = 1000) -> list[int]:
    """A brush stream of literal blocks (flag 0), as Label Studio's encoder writes for short runs."""
    parts = [f"{len(values):032b}", f"{8 - 1:05b}", "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))]
    for i in range(0, len(values), block):
        chunk = values[i:i + block]
        parts.append("0" + "11" + f"{len(chunk) - 1:016b}" + "".join(f"{int(v):08b}" for v in chunk))
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return np.packbits(np.frombuffer(bits.encode("ascii"), dtype=np.uint8) - ord("0")).tolist()


def test_brush_literal_blocks() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((40, 70)) > 0.5
    rgba = np.repeat(mask.reshape(-1), 4).astype(np.uint8) * 255
    assert np.array_equal(decode_brush(_literal_brush(rgba), 40, 70), mask)
    with pytest.raises(ValueError, match="ends early"):
        decode_brush(_literal_brush(rgba)[:-50], 40, 70)
