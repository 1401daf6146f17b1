"""Detection and instance segmentation on real data, through the CLI a user types.

The full runs (all of BCCD, all of DSB2018, default settings) are ``slow`` and hold the issue's targets: BCCD test
mAP50 >= 0.85, DSB2018 test mask mAP50 >= 0.70. CI runs the ``ci`` subset: 48 BCCD images for four short epochs,
checking that train -> evaluate -> predict work end to end on the real formats and that the detector learns well
above chance (a detector that learnt nothing scores ~0 mAP50); and Mask R-CNN end to end on 24 DSB2018 images (its
learning on 40 images, 7 min on 2 cores, is a slow test).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.evaluation.coco_eval import STAT_NAMES

runner = CliRunner()


def _cli(*args: str) -> dict:
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output[-3000:]
    return json.loads(r.stdout)


def _bccd_subset(bccd_dir: Path, out: Path, n: int) -> Path:
    """The first ``n`` BCCD images with their Pascal VOC files, as the tool wrote them."""
    for sub in ("Annotations", "JPEGImages"):
        (out / sub).mkdir(parents=True)
    for xml in sorted((bccd_dir / "BCCD" / "Annotations").glob("*.xml"))[:n]:
        shutil.copy(xml, out / "Annotations" / xml.name)
        shutil.copy(bccd_dir / "BCCD" / "JPEGImages" / f"{xml.stem}.jpg", out / "JPEGImages" / f"{xml.stem}.jpg")
    return out


def _dsb_subset(dsb_dir: Path, out: Path, n: int, *, largest: int = 0) -> Path:
    """``n`` DSB2018 samples (image + one PNG mask per nucleus), Kaggle layout; ``largest``: only images whose
    sides are at most that many pixels."""
    from PIL import Image

    out.mkdir(parents=True)
    kept = 0
    for sample in sorted((dsb_dir / "stage1_train").iterdir()):
        with Image.open(sample / "images" / f"{sample.name}.png") as im:
            if largest and max(im.size) > largest:
                continue
        shutil.copytree(sample, out / sample.name)
        kept += 1
        if kept == n:
            break
    return out


def _project(path: Path, task: str, source: Path) -> Path:
    _cli("init", path, "--task", task, "--json")
    _cli("import", path, source, "--json")
    _cli("version", "create", path, "--seed", "0", "--json")
    return path


def _train_evaluate(proj: Path, *options: str) -> tuple[str, dict, dict]:
    """``train`` then ``evaluate`` on the test split; returns (run id, run config, evaluation)."""
    run = _cli("train", proj, "--version", "v1", *options, "--json")["run"]
    config = json.loads((proj / "runs" / run / "config.json").read_text())
    return run, config, _cli("evaluate", proj, "--run", run, "--json")


@pytest.mark.slow
@pytest.mark.ci
def test_bccd_detection_subset_train_evaluate_predict(bccd_dir: Path, tmp_path: Path) -> None:
    proj = _project(tmp_path / "cells", "detection", _bccd_subset(bccd_dir, tmp_path / "voc", 48))
    run, config, out = _train_evaluate(proj, "--epochs", "4", "--image-size", "256")  # ~2 min on 2 cores
    assert config["extra"]["eval_size"] == 256  # --image-size reaches the detector
    assert set(out["per_class"]) == {"WBC", "RBC", "Platelets"}
    for key in ("map", "map50", "map75", "image_jaccard", "confusion"):
        assert key in out
    # measured on 2 loaded cores: mAP50 0.35, RBC AP50 0.66 (48 images, 4 epochs at 256 px; 80 images at 288 px gave
    # 0.29 and 0.40, RBC 0.74 and 0.77, in twice the time); WBC and platelets, 1-2 per image, need more epochs. A
    # detector that learnt nothing scores ~0.01
    assert out["map50"] >= 0.15, out["per_class"]
    assert out["per_class"]["RBC"]["ap50"] >= 0.5, out["per_class"]  # the common class is learnt first
    html = (proj / "runs" / run / "report.html").read_text()
    assert "data:image/jpeg;base64" in html and "Augmentation" in html
    # the COCO files the run folder holds give pycocotools the very same numbers, to the last digit
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(proj / "runs" / run / "coco_gt.json"))
        e = COCOeval(gt, gt.loadRes(str(proj / "runs" / run / "coco_results_bbox.json")), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    assert out["max_dets"] == 100
    assert [out["bbox"][k] for k in STAT_NAMES] == [float(v) for v in e.stats]

    image = next((tmp_path / "voc" / "JPEGImages").glob("*.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(image.read_bytes()[:300])
    r = runner.invoke(app, [str(a) for a in ("predict", proj, image, broken, "--run", run, "--json")])
    assert r.exit_code == 0, r.output[-3000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]  # JSON lines, as predict-package prints them
    dets = rows[0]["prediction"]["detections"]
    assert dets and {d["name"] for d in dets} <= {"WBC", "RBC", "Platelets"}
    assert "error" in rows[1] and "prediction" not in rows[1]  # a bad file costs only its own prediction


@pytest.mark.slow
@pytest.mark.ci
def test_dsb2018_instance_segmentation_runs_end_to_end(dsb_dir: Path, tmp_path: Path) -> None:
    """Mask R-CNN on real DSB2018 nuclei through the CLI: train, evaluate (bbox and mask mAP that pycocotools
    computes to the last digit from the run's COCO files), predict masks. Two short epochs of 17 training images (18
    steps, about a minute on 2 cores): enough for the loss to fall and for the first masks, not for a target; the
    slow tests below hold the mAP50 targets."""
    proj = _project(tmp_path / "nuclei", "segmentation", _dsb_subset(dsb_dir, tmp_path / "kaggle", 24, largest=360))
    run, config, out = _train_evaluate(proj, "--epochs", "2", "--image-size", "224")
    assert config["model"]["name"] == "maskrcnn_mobilenet_v2_fpn" and config["extra"]["kind"] == "instance"
    assert set(out["per_class"]) == {"nucleus"} and out["max_dets"] == 100
    epochs = [json.loads(line) for line in (proj / "runs" / run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    # measured: 2.50 -> 1.92 (and 194 instances on the 3 test images); an optimiser that did not step stays put
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"], epochs
    for iou_type in ("bbox", "segm"):
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(proj / "runs" / run / "coco_gt.json"))
            e = COCOeval(gt, gt.loadRes(str(proj / "runs" / run / f"coco_results_{iou_type}.json")), iou_type)
            e.evaluate()
            e.accumulate()
            e.summarize()
        assert [out[iou_type][k] for k in STAT_NAMES] == [float(v) for v in e.stats], iou_type
    image = sorted((tmp_path / "kaggle").glob("*/images/*.png"))[0]
    row = _cli("predict", proj, image, "--run", run, "--score-threshold", "0.01", "--json")
    dets = row["prediction"]["detections"]
    assert dets, row  # nuclei found, each with its mask (COCO RLE) in the run's class names
    assert all(d["name"] == "nucleus" and d["mask"]["counts"] for d in dets), dets[0]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_dsb2018_instance_segmentation_subset(dsb_dir: Path, tmp_path: Path) -> None:
    # the images of 256-360 px a side (98 of the 120): the 696x520 and 1024x1024 ones cost more to validate than to train on
    proj = _project(tmp_path / "nuclei", "segmentation", _dsb_subset(dsb_dir, tmp_path / "kaggle", 40, largest=360))
    _, config, out = _train_evaluate(proj, "--epochs", "4", "--image-size", "256")
    assert config["model"]["name"] == "maskrcnn_mobilenet_v2_fpn" and config["extra"]["kind"] == "instance"
    assert "segm" in out and "bbox" in out and set(out["per_class"]) == {"nucleus"}
    # 4 epochs of 28 images are 56 SGD steps, the steep start of learning: test mAP50 0.24 and 0.23 on quiet AMD
    # cores, 0.145 on a loaded one, 0.088 on a CI machine's Intel cores (float sums differ with the CPU and the
    # thread count). An untrained head scores ~0.005: 0.05 is ten times that. The slow test below holds the target.
    assert out["map50"] >= 0.05, out


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the whole dataset with the defaults: 20-40 min on 2 cores
def test_bccd_detection_full_reaches_map50_085(bccd_dir: Path, tmp_path: Path) -> None:
    proj = _project(tmp_path / "cells", "detection", bccd_dir)
    _, _, out = _train_evaluate(proj)
    assert out["map50"] >= 0.85, out["per_class"]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_dsb2018_full_reaches_mask_map50_070(dsb_dir: Path, tmp_path: Path) -> None:
    proj = _project(tmp_path / "nuclei", "segmentation", dsb_dir)
    _, _, out = _train_evaluate(proj)
    assert out["map50"] >= 0.70, out
