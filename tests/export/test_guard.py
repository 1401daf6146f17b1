"""The int8 guard checks the metric the manifest shows, computed by the evaluation code; its decision holds on any CPU.

int8 numbers differ between CPUs (VNNI or not), so no test here asserts an int8 accuracy: the decision is tested on
controlled numbers, and the real int8 path with limits that make the outcome certain whatever the CPU measures.
"""

from __future__ import annotations

import json

import pytest

from visionloop.core.package import load_package
from visionloop.export.api import GUARD_FILE, export_run
from visionloop.export.quantize import AccuracyDropError, judge_int8

FAST = {"model": "test_resnet", "pretrained": False, "image_size": 32}
JUDGE = {"metric": "map", "method": "static-qdq", "calibration_images": 8, "validation_images": 5}


def test_decision_on_controlled_numbers() -> None:
    ok = judge_int8(fp32=0.90, int8=0.895, max_drop=0.01, force=False, **JUDGE)
    assert not ok.forced and ok.drop == pytest.approx(0.005) and ok.metric == "map"
    better = judge_int8(fp32=0.90, int8=0.92, max_drop=0.01, force=False, **JUDGE)
    assert not better.forced and better.drop == pytest.approx(-0.02)
    with pytest.raises(AccuracyDropError) as err:
        judge_int8(fp32=0.9902, int8=0.9706, max_drop=0.01, force=False, **JUDGE)
    e = err.value
    assert e.record is not None and e.record.forced and e.record.drop == pytest.approx(0.0196)
    assert "0.9902" in str(e) and "0.9706" in str(e) and "--force" in str(e)
    forced = judge_int8(fp32=0.9902, int8=0.9706, max_drop=0.01, force=True, **JUDGE)
    assert forced.forced and forced == e.record


@pytest.fixture
def classifier_run(synthetic_project):  # noqa: ANN001, ANN201
    from visionloop.training import train

    p = synthetic_project("classification", n_per_class=12)
    res = train(p, version="v1", strategy="linear", progress=False, batch_size=8, **FAST)
    return p, res.run_id


def test_guard_measures_the_manifest_metric_and_records_both_outcomes(classifier_run, tmp_path) -> None:  # noqa: ANN001
    from visionloop.evaluation.api import evaluate_run

    p, run = classifier_run
    guard_file = p.root / "runs" / run / GUARD_FILE
    # max_drop 1.0: written whatever the CPU's int8 kernels lose
    out = export_run(p, run, tmp_path / "int8.vlpkg", int8=True, max_drop=1.0)
    m = load_package(out).manifest
    val = evaluate_run(p, run, split="val", report=False)
    assert m.int8 is not None and m.int8.metric == "balanced_accuracy" and m.main_metric == "val_balanced_accuracy"
    assert val["main_metric"] == m.int8.metric
    assert m.int8.fp32 == pytest.approx(val["balanced_accuracy"], abs=1e-12)  # one metric, one implementation
    assert m.int8.fp32 == pytest.approx(m.metrics["val_balanced_accuracy"], abs=1e-12)  # ... that the manifest shows
    assert m.int8.fp32 > 0.5 and m.int8.validation_images == val["n"]
    written = json.loads(guard_file.read_text())
    assert written["outcome"] == "written" and written["fp32"] == m.int8.fp32 and written["package"] == str(out)
    # max_drop -1.0: refused whatever it measures (no CPU loses less than nothing); recorded, no package written
    with pytest.raises(AccuracyDropError) as err:
        export_run(p, run, tmp_path / "refused.vlpkg", int8=True, max_drop=-1.0)
    assert not (tmp_path / "refused.vlpkg").exists()
    refused = json.loads(guard_file.read_text())
    assert refused["outcome"] == "refused" and refused["package"] is None
    assert refused["fp32"] == pytest.approx(val["balanced_accuracy"], abs=1e-12)
    assert refused["drop"] == pytest.approx(err.value.drop) and refused["max_drop"] == -1.0


def _manifest(task: str, kind: str, classes: list[tuple[int, str]]):  # noqa: ANN202
    from visionloop.core.package import ClassEntry, Manifest, TensorSpec

    return Manifest(name="m", task=task, classes=[ClassEntry(i, n) for i, n in classes], preprocess={},
                    output_kind=kind, inputs=[TensorSpec("x", [1], "float32")], outputs=[], opset=17, batchable=True)


def test_guard_metric_is_the_evaluation_metric_for_boxes_and_semantic_maps() -> None:
    """Controlled predictions: the guard's ``map`` is pycocotools' (via coco_scores), its ``miou`` semantic_scores'."""
    import numpy as np

    from visionloop.core.annotations import Boxes, SemanticMask
    from visionloop.evaluation.detection import coco_scores, semantic_scores
    from visionloop.export.metrics import main_metric
    from visionloop.inference import ClassScore, Detection, Prediction

    m = _manifest("detection", "torchvision_detection", [(4, "cell"), (9, "dot")])
    gt = [Boxes(np.asarray([[10, 10, 50, 50], [60, 10, 90, 40], [5, 5, 5.5, 30]], float), np.asarray([4, 9, 4]))]
    preds = [Prediction(task="detection", width=100, height=80, detections=[
        Detection((10, 10, 50, 52), 4, "cell", 0.9), Detection((62, 12, 90, 40), 9, "dot", 0.8),
        Detection((0, 60, 20, 79), 9, "dot", 0.7)])]
    key, value = main_metric(m, preds, gt)
    kept = Boxes(gt[0].xyxy[:2], gt[0].class_id[:2])  # the half-pixel-wide box is dropped, as evaluation drops it
    ref = coco_scores([kept], [preds[0].to_annotation()], sizes=[(80, 100)], labels=[4, 9])["bbox"]["map"]
    assert key == "map" and value == pytest.approx(ref) and 0.3 < value < 1.0

    sm = _manifest("segmentation", "semantic_map", [(0, "background"), (3, "nucleus")])
    truth = np.zeros((8, 8), np.int32)
    truth[2:6, 2:6] = 3
    truth[0, 0] = 255  # unlabelled pixel: ignored
    cmap = np.zeros((8, 8), np.int32)
    cmap[2:6, 2:4] = 3
    pred = Prediction(task="segmentation", width=8, height=8, class_map=cmap,
                      scores=[ClassScore(0, "background", 0.9), ClassScore(3, "nucleus", 0.8)])
    key, value = main_metric(sm, [pred], [SemanticMask(mask=truth)])
    ref_truth = np.where(truth == 3, 1, np.where(truth == 255, 255, 0))
    ref = semantic_scores([ref_truth], [(cmap == 3).astype(np.int64)], num_classes=2)["miou"]
    assert key == "miou" and value == pytest.approx(ref) and value == pytest.approx((8 / 16 + 47 / 55) / 2)
