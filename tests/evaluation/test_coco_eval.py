"""Our COCO numbers must equal pycocotools run the usual way on the exported JSON files, to the last digit."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionloop.core.annotations import RLE, Boxes, Instances
from visionloop.evaluation.coco_eval import STAT_NAMES, coco_evaluate, to_coco_json

BCCD_CLASSES = ["WBC", "RBC", "Platelets"]


def _bccd(bccd_dir: Path, n: int) -> tuple[list[Boxes], list[tuple[int, int]]]:
    gts, sizes = [], []
    for xml in sorted((bccd_dir / "BCCD" / "Annotations").glob("*.xml"))[:n]:
        root = ET.parse(xml).getroot()
        boxes, ids = [], []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x2 > x1 and y2 > y1:
                boxes.append([x1, y1, x2, y2])
                ids.append(BCCD_CLASSES.index(obj.find("name").text.strip()) + 1)
        gts.append(Boxes(np.asarray(boxes).reshape(-1, 4), np.asarray(ids, dtype=np.int64)))
        size = root.find("size")
        sizes.append((int(size.find("height").text), int(size.find("width").text)))
    return gts, sizes


def _noisy_predictions(gts: list[Boxes], sizes: list[tuple[int, int]], seed: int) -> list[Boxes]:
    """Predictions a real detector could make: jittered boxes, some missed, some wrong class, false alarms."""
    rng = np.random.default_rng(seed)
    preds = []
    for g, (h, w) in zip(gts, sizes, strict=True):
        keep = rng.random(len(g)) > 0.15
        xyxy = g.xyxy[keep].copy()
        wh = np.repeat(xyxy[:, 2:] - xyxy[:, :2], 2, axis=0).reshape(-1, 4)
        xyxy += rng.normal(0, 0.08, xyxy.shape) * wh
        cls = g.class_id[keep].copy()
        flip = rng.random(len(cls)) < 0.07
        cls[flip] = rng.integers(1, 4, flip.sum())
        n_fp = rng.integers(0, 5)
        fp = rng.uniform(0, 1, (n_fp, 2)) * [w * 0.8, h * 0.8]
        fp = np.hstack([fp, fp + rng.uniform(15, 120, (n_fp, 2))])
        xyxy = np.vstack([xyxy, fp])
        xyxy[:, [0, 2]] = np.sort(xyxy[:, [0, 2]], axis=1).clip(0, w)
        xyxy[:, [1, 3]] = np.sort(xyxy[:, [1, 3]], axis=1).clip(0, h)
        cls = np.concatenate([cls, rng.integers(1, 4, n_fp)])
        scores = np.concatenate([rng.uniform(0.3, 1.0, keep.sum()), rng.uniform(0.0, 0.6, n_fp)])
        preds.append(Boxes(xyxy, cls, scores.round(6)))
    return preds


def _pycocotools(gt_path: Path, res_path: Path, iou_type: str, max_dets: list[int] | None = None):
    """pycocotools as its README runs it, from files."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(res_path))
        E = COCOeval(gt, dt, iou_type)
        if max_dets is not None:
            E.params.maxDets = max_dets
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E


def _export(tmp_path: Path, gt_json: dict, results: list) -> tuple[Path, Path]:
    gp, rp = tmp_path / "gt.json", tmp_path / "res.json"
    gp.write_text(json.dumps(gt_json))
    rp.write_text(json.dumps(results))
    return gp, rp


def test_bbox_equals_pycocotools_on_bccd(bccd_dir: Path, tmp_path: Path) -> None:
    gts, sizes = _bccd(bccd_dir, 60)
    preds = _noisy_predictions(gts, sizes, seed=0)
    gt_json, results = to_coco_json(gts, preds, sizes=sizes, labels=[1, 2, 3], names=BCCD_CLASSES)
    ours = coco_evaluate(gt_json, results, iou_type="bbox")
    E = _pycocotools(*_export(tmp_path, gt_json, results), "bbox")
    assert [ours.stats[k] for k in STAT_NAMES] == [float(v) for v in E.stats]  # exact, not approx
    assert 0.2 < ours.stats["map"] < 0.95  # a meaningful operating point, not a degenerate 0 or 1
    # per-class AP: pycocotools' precision array for that category, averaged the way summarize() does
    for k, cat in enumerate(E.params.catIds):
        s = E.eval["precision"][:, :, k, 0, -1]
        assert ours.per_class[cat]["ap"] == float(np.mean(s[s > -1]))
        s50 = E.eval["precision"][0, :, k, 0, -1]
        assert ours.per_class[cat]["ap50"] == float(np.mean(s50[s50 > -1]))
    assert np.mean([v["ap"] for v in ours.per_class.values()]) == pytest.approx(ours.stats["map"], abs=1e-12)


def test_more_detections_per_image_than_coco_default(bccd_dir: Path, tmp_path: Path) -> None:
    gts, sizes = _bccd(bccd_dir, 20)
    preds = _noisy_predictions(gts, sizes, seed=1)
    gt_json, results = to_coco_json(gts, preds, sizes=sizes, labels=[1, 2, 3])
    ours = coco_evaluate(gt_json, results, max_dets=300)
    E = _pycocotools(*_export(tmp_path, gt_json, results), "bbox", max_dets=[1, 10, 300])
    # summarize() hard-codes 100 for AP (it prints -1 here); our summary reads the same precision array at 300
    s = E.eval["precision"][:, :, :, 0, 2]
    assert ours.stats["map"] == float(np.mean(s[s > -1]))
    assert ours.stats["ar10"] == float(E.stats[7])


def _dsb(dsb_dir: Path, n: int) -> tuple[list[Instances], list[tuple[int, int]]]:
    gts, sizes = [], []
    for folder in sorted((dsb_dir / "stage1_train").iterdir())[:n]:
        masks = [np.asarray(Image.open(p)) > 0 for p in sorted((folder / "masks").glob("*.png"))]
        h, w = masks[0].shape
        boxes = []
        for m in masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        gts.append(Instances(Boxes(np.asarray(boxes, float), np.ones(len(masks), np.int64)),
                             [RLE.encode(m) for m in masks]))
        sizes.append((h, w))
    return gts, sizes


def test_segm_and_bbox_equal_pycocotools_on_dsb2018(dsb_dir: Path, tmp_path: Path) -> None:
    from scipy import ndimage

    gts, sizes = _dsb(dsb_dir, 6)
    rng = np.random.default_rng(2)
    preds = []
    for g, (h, w) in zip(gts, sizes, strict=True):
        segs, boxes, scores = [], [], []
        for i in range(len(g)):
            if rng.random() < 0.1:
                continue
            m = g.mask(i, h, w)
            op = rng.choice(["dilate", "erode", "same", "shift"])
            if op == "dilate":
                m = ndimage.binary_dilation(m, iterations=int(rng.integers(1, 3)))
            elif op == "erode":
                m2 = ndimage.binary_erosion(m)
                m = m2 if m2.any() else m
            elif op == "shift":
                m = np.roll(m, int(rng.integers(-3, 4)), axis=1)
            ys, xs = np.nonzero(m)
            segs.append(RLE.encode(m))
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            scores.append(float(rng.uniform(0.2, 1.0)))
        preds.append(Instances(Boxes(np.asarray(boxes, float).reshape(-1, 4), np.ones(len(segs), np.int64),
                                     np.asarray(scores)), segs))
    for iou_type in ("segm", "bbox"):
        gt_json, results = to_coco_json(gts, preds, sizes=sizes, labels=[1], names=["nucleus"], iou_type=iou_type)
        ours = coco_evaluate(gt_json, results, iou_type=iou_type)
        E = _pycocotools(*_export(tmp_path, gt_json, results), iou_type)
        assert [ours.stats[k] for k in STAT_NAMES] == [float(v) for v in E.stats], iou_type
        assert 0.1 < ours.stats["map"] < 0.99


def test_no_predictions_gives_zero_not_an_error() -> None:
    gts = [Boxes(np.array([[0, 0, 10, 10.0]]), np.array([1]))]
    gt_json, results = to_coco_json(gts, [None], sizes=[(20, 20)], labels=[1])
    r = coco_evaluate(gt_json, results)
    assert r.stats["map"] == 0.0 and r.per_class[1]["ap"] == 0.0


def test_perfect_predictions_score_one() -> None:
    gts = [Boxes(np.array([[0, 0, 10, 10.0], [20, 20, 40, 50]]), np.array([1, 2]))]
    preds = [Boxes(gts[0].xyxy, gts[0].class_id, np.array([0.9, 0.8]))]
    gt_json, results = to_coco_json(gts, preds, sizes=[(64, 64)], labels=[1, 2])
    r = coco_evaluate(gt_json, results)
    assert r.stats["map"] == pytest.approx(1.0) and r.stats["map50"] == pytest.approx(1.0)
