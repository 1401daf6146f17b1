from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from boxfmt_compare import assert_same, roundtrip
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from visionloop.core.annotations import RLE, Boxes, Instances, Label, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import coco, detect_format, detect_source
from visionloop.formats.base import FormatDataset, Sample

REAL = [
    "coco_dataset/coco", "coco_dataset/coco_instances", "coco_dataset/mmdet_coco", "coco_dataset/coco_roboflow",
    "coco_dataset/coco_labels", "coco_dataset/coco_person_keypoints", "coco_dataset/coco_stuff",
    "coco_dataset/coco_image_info", "roboflow_dataset/coco", "kaggle_dataset/relaxed_coco",
]


@pytest.mark.parametrize("rel", REAL)
def test_roundtrip_real_samples(formats_dir: Path, tmp_path: Path, rel: str) -> None:
    first, second = roundtrip(coco, formats_dir / rel, tmp_path)
    assert all(s.image_path is not None for s in first.samples + second.samples)


@pytest.mark.parametrize("rel", REAL)
def test_detected_as_coco(formats_dir: Path, rel: str) -> None:
    assert detect_format(formats_dir / rel)[0] == "coco"


def test_instances_content(formats_dir: Path) -> None:
    ds = coco.load(formats_dir / "coco_dataset/coco_instances")
    assert ds.task is Task.SEGMENTATION
    assert ds.classes == ["a", "b", "c"]
    samples = {s.subset: s for s in ds.samples}
    train, val = samples["train"], samples["val"]
    assert (train.width, train.height) == (10, 5)
    assert train.image_path.name == "a.jpg"
    # the train annotation is a bare bbox [2, 2, 3, 1] (xywh): its rectangle becomes the outline, reported
    assert isinstance(train.annotation, Instances)
    assert train.annotation.boxes.xyxy.tolist() == [[2, 2, 5, 3]]
    assert [p.action for p in ds.problems] == ["repaired"]
    inst = val.annotation
    assert isinstance(inst, Instances)
    assert [ds.classes[c] for c in inst.boxes.class_id] == ["a", "b"]
    assert inst.boxes.attributes == [{"x": 1, "y": "hello"}, {"iscrowd": True}]
    assert inst.segmentations[0] == [[0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0]]
    crowd = inst.segmentations[1]
    assert isinstance(crowd, RLE) and crowd.size == (10, 5)
    # uncompressed counts [0, 20, 30] in column-major order: the first two columns are set
    expected = np.zeros((10, 5), dtype=bool)
    expected[:, :2] = True
    assert np.array_equal(crowd.decode(), expected)


def test_labels_file_is_tagging(formats_dir: Path) -> None:
    ds = coco.load(formats_dir / "coco_dataset/coco_labels")
    assert ds.task is Task.TAGGING
    tags = {s.name: {ds.classes[c] for c in s.annotation.class_ids} for s in ds.samples}
    assert tags == {"a.jpg": {"b"}, "b.jpg": {"a", "b"}}


@pytest.mark.parametrize("kind", ["captions", "panoptic"])
def test_captions_and_panoptic_are_refused_with_a_word(formats_dir: Path, kind: str) -> None:
    folder = formats_dir / f"coco_dataset/coco_{kind}"
    assert detect_source(folder) == "coco"  # claimed (weakly), so the import says why rather than taking plain images
    with pytest.raises(FormatError, match=f"only {kind} files"):
        coco.load(folder)
    with pytest.raises(FormatError, match=f"{kind}.*not"):  # the file named directly, whatever its name
        coco.load(next((folder / "annotations").glob("*_train.json")))


def test_captions_and_panoptic_beside_instances_are_reported(formats_dir: Path) -> None:
    ds = coco.load(formats_dir / "coco_dataset/coco")
    skipped = {p.path for p in ds.problems if p.action == "not imported"}
    assert {"annotations/captions_train.json", "annotations/panoptic_val.json"} <= skipped
    assert ds.samples


def _synthetic(image_factory) -> FormatDataset:
    img1 = image_factory("src/one.jpg", width=64, height=48, seed=1)
    img2 = image_factory("src/two.png", width=40, height=30, seed=2)
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:20, 10:30] = True
    mask[22:28, 2:8] = True
    inst1 = Instances(
        Boxes([[10, 5, 40, 30], [0, 0, 20, 20]], [0, 1], attributes=[{}, {"occluded": True}]),
        [[[10.0, 5.0, 40.0, 5.0, 40.0, 30.0, 10.0, 30.0]], [[0.0, 0.0, 20.0, 0.0, 0.0, 20.0]]],
    )
    inst2 = Instances(Boxes([[2, 5, 30, 28]], [1]), [RLE.encode(mask)])
    return FormatDataset(task=Task.SEGMENTATION, classes=["cat", "dog"], samples=[
        Sample(name="one.jpg", image_path=img1, annotation=inst1, width=64, height=48, subset="val"),
        Sample(name="two.png", image_path=img2, annotation=inst2, width=40, height=30, subset="val"),
    ])


def test_export_loads_in_pycocotools(image_factory, tmp_path: Path) -> None:
    ds = _synthetic(image_factory)
    out = tmp_path / "out"
    coco.save(ds, out)
    ann_file = out / "annotations" / "instances_val.json"
    gt = COCO(str(ann_file))
    assert sorted(c["name"] for c in gt.loadCats(gt.getCatIds())) == ["cat", "dog"]
    assert len(gt.getAnnIds()) == 3
    # every annotation decodes to the mask it was saved from
    for ann in gt.loadAnns(gt.getAnnIds()):
        m = gt.annToMask(ann)
        img = gt.loadImgs(ann["image_id"])[0]
        assert m.shape == (img["height"], img["width"]) and m.sum() > 0
    # the ground truth used as detections scores AP 1.0 for boxes and masks
    results = [dict(a, score=1.0) for a in json.loads(ann_file.read_text())["annotations"]]
    for a in results:
        a.pop("id")
    for iou_type in ("bbox", "segm"):
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0)
    # and the export reads back equal, masks compared decoded
    assert_same(ds, coco.load(out))
    rle = coco.load(out).samples[1].annotation.segmentations[0]
    assert isinstance(rle, RLE)
    assert int(mask_utils.area(rle.to_coco())) == 20 * 15 + 6 * 6


def test_real_export_loads_in_pycocotools(formats_dir: Path, tmp_path: Path) -> None:
    ds = coco.load(formats_dir / "coco_dataset/coco_instances")
    coco.save(ds, tmp_path)
    for name in ("instances_train.json", "instances_val.json"):
        gt = COCO(str(tmp_path / "annotations" / name))
        anns = gt.loadAnns(gt.getAnnIds())
        dt = gt.loadRes([{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                          "score": 0.9} for a in anns])
        assert len(dt.getAnnIds()) == len(anns)


def test_classification_roundtrip(image_factory, tmp_path: Path) -> None:
    a = image_factory("a.jpg", seed=1)
    b = image_factory("b.jpg", seed=2)
    ds = FormatDataset(task=Task.CLASSIFICATION, classes=["x", "y"], samples=[
        Sample(name="a.jpg", image_path=a, annotation=Label(1)), Sample(name="b.jpg", image_path=b, annotation=Label(0)),
    ])
    coco.save(ds, tmp_path / "out")
    back = coco.load(tmp_path / "out")
    assert back.task is Task.CLASSIFICATION
    assert_same(ds, back)
    ds.task = Task.TAGGING
    ds.samples[0].annotation = Tags(frozenset({0, 1}))
    ds.samples[1].annotation = Tags(frozenset({0}))
    coco.save(ds, tmp_path / "out2")
    assert_same(ds, coco.load(tmp_path / "out2"))


# --- bad input ---------------------------------------------------------------------------------------------------


def _write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _doc(images: list[dict], annotations: list[dict]) -> dict:
    return {"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "cat"}]}


def test_corrupt_json(tmp_path: Path, image_factory) -> None:
    bad = _write(tmp_path / "annotations" / "instances_train.json", '{"images": [ {"id": 1, "file_')
    with pytest.raises(FormatError, match="no readable COCO file"):
        coco.load(bad)
    image_factory("images/val/a.jpg")
    _write(tmp_path / "annotations" / "instances_val.json",
           _doc([{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
                [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}]))
    ds = coco.load(tmp_path)
    assert [s.name for s in ds.samples] == ["a.jpg"]
    assert ds.samples[0].subset == "val"
    assert any(p.path == "annotations/instances_train.json" and "JSON" in p.reason for p in ds.problems)


def test_missing_image_unknown_category_and_clipping(tmp_path: Path, image_factory) -> None:
    image_factory("images/a.jpg", width=64, height=48)
    f = _write(tmp_path / "annotations" / "instances.json", _doc(
        [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
         {"id": 2, "file_name": "gone.jpg", "width": 64, "height": 48}],
        [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [50, 40, 30, 20]},
         {"id": 2, "image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]},
         {"id": 3, "image_id": 5, "category_id": 7, "bbox": [1, 1, 2, 2]},
         {"id": 4, "image_id": 2, "category_id": 7, "bbox": [1, 1, 2, 2]}],
    ))
    ds = coco.load(f)
    assert ds.task is Task.DETECTION
    by_name = {s.name: s for s in ds.samples}
    assert by_name["gone.jpg"].image_path is None
    assert by_name["a.jpg"].annotation.xyxy.tolist() == [[50, 40, 64, 48]]
    reasons = [(p.action, p.reason) for p in ds.problems]
    assert any(a == "clipped" and "64x48" in r for a, r in reasons)
    assert any("unknown category_id 99" in r for _, r in reasons)
    assert any("image_id 5" in r for _, r in reasons)
    assert any("'gone.jpg' not found" in r for _, r in reasons)


def test_not_coco(tmp_path: Path) -> None:
    _write(tmp_path / "x.json", {"shapes": [], "imagePath": "a.jpg"})
    assert coco.detect(tmp_path) == 0.0
    with pytest.raises(FormatError, match="expected a COCO JSON"):
        coco.load(tmp_path)
