"""One truth per detection metric, on one tiny trained detector (coloured squares, 1 epoch):

- score thresholds are chosen on the validation split, whatever split is evaluated, and saved with the run;
- the package carries them and the Predictor applies them;
- the int8 guard scores a package with the same pycocotools mAP that ``evaluate`` gives on the same split;
- ``predict --json`` (the run, PyTorch) and ``predict-package --json`` (its package, onnxruntime) answer with the same
  keys for the same image;
- the report is one page from the one renderer.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from visionloop.core.annotations import Boxes
from visionloop.storage import NewImage, Project
from visionloop.storage.versions import create_version, version_items

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


def _project(root: Path, n: int = 12) -> Project:
    p = Project.create(root, task="detection")
    ids = p.class_ids(list(COLOURS))
    rng = np.random.default_rng(0)
    for k in range(n):
        arr = rng.integers(90, 140, (96, 128, 3)).astype(np.uint8)
        boxes, cls = [], []
        for j, name in enumerate(COLOURS):
            s = int(rng.integers(20, 30))
            x, y = 8 + 60 * j + int(rng.integers(0, 20)), int(rng.integers(0, 96 - s))
            arr[y:y + s, x:x + s] = COLOURS[name]
            boxes.append([x, y, x + s, y + s])
            cls.append(ids[name])
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        [(iid, _)] = p.add_images([NewImage(sha256=p.blobs.put(buf.getvalue()), width=128, height=96, format="png",
                                            name=f"{k}.png")])
        p.save_annotation(iid, Boxes(np.asarray(boxes, float), np.asarray(cls)), base_revision=None, author="t")
    create_version(p, name="v1", fractions=(0.5, 0.25, 0.25), phash_distance=-1)
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    import visionloop.training.detection as td

    root = tmp_path_factory.mktemp("det")
    p = _project(root / "proj")
    hp = td.DetectionHParams(epochs=1, batch_size=2, eval_size=96, train_sizes=(96,), max_size=128, warmup_steps=2)
    run = td.train_detection(p, version="v1", hparams=hp, progress=False, seed=0)
    yield p, run.run_id, root
    p.close()


def test_thresholds_come_from_the_validation_split(trained) -> None:  # noqa: ANN001
    from visionloop.evaluation.detection_run import evaluate_run
    from visionloop.evaluation.detection_thresholds import THRESHOLDS_FILE

    p, run, _ = trained
    test = evaluate_run(p, run, split="test")
    saved = json.loads((p.root / "runs" / run / THRESHOLDS_FILE).read_text())
    assert saved["split"] == "val" and saved["source"] == "validation" and saved["images"] == 3
    assert test["thresholds"] == {"red": saved["by_label"]["1"], "blue": saved["by_label"]["2"]}
    assert "validation" in test["thresholds_source"]
    val = evaluate_run(p, run, split="val", report=False)
    assert val["thresholds"] == test["thresholds"]  # the evaluated split never picks its own thresholds
    assert test["main_metric"] == "map" and "miou" not in test
    html = (p.root / "runs" / run / "report.html").read_text()
    assert html.count("<style>") == 1 and html.count("<section") >= 5
    for needle in ("COCO metrics", "Per class", "Images, most errors first", "Training", "Setup",
                   "Augmentation policy", "the F1-best score per class on the validation split"):
        assert needle in html, needle


def test_package_thresholds_guard_metric_and_one_prediction_schema(trained, tmp_path: Path) -> None:  # noqa: ANN001
    from visionloop.cli.deploy_cmds import register as register_deploy
    from visionloop.cli.train_cmds import register as register_train
    from visionloop.core.package import load_package
    from visionloop.evaluation.detection_run import evaluate_run
    from visionloop.export.api import _int8_options, export_run
    from visionloop.export.quantize import evaluate_model
    from visionloop.inference import Predictor
    from visionloop.storage.runs import load_config

    p, run, _ = trained
    out = export_run(p, run, tmp_path / "det")
    m = load_package(out).manifest
    saved = json.loads((p.root / "runs" / run / "thresholds.json").read_text())["by_label"]
    ids = p.class_ids(list(COLOURS))
    assert m.thresholds["per_class"] == {str(ids["red"]): saved["1"], str(ids["blue"]): saved["2"]}
    assert m.main_metric == "val_map"
    with Predictor(out, sessions=1) as pred:
        assert pred.class_thresholds.tolist() == pytest.approx([saved["1"], saved["2"]])

    # the guard's fp32 number is evaluate's number on the same (validation) split: one pycocotools mAP
    options = _int8_options(p, load_config(p, run), max_drop=0.01, force=False, max_calibration=4,
                            max_validation=None)
    key, guard_fp32 = evaluate_model(load_package(out), options.validation, max_dets=options.max_dets)
    val = evaluate_run(p, run, split="val", report=False)
    print(f"guard fp32 {key} {guard_fp32:.6f}, evaluate {val[key]:.6f}")
    assert key == "map" and guard_fp32 == pytest.approx(val[key], abs=1e-3)

    # predict (the run, PyTorch) and predict-package (the package, onnxruntime): same keys for the same image
    app = typer.Typer()
    register_train(app)
    register_deploy(app)
    image = tmp_path / "img.png"
    image.write_bytes(p.image_bytes(version_items(p, "v1", split="test")[0].image.id))
    runner = CliRunner()
    rows = {}
    for cmd in (["predict", str(p.root), str(image), "--run", run, "--json"],
                ["predict-package", str(out), str(image), "--json"]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 0, r.output
        rows[cmd[0]] = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    a, b = rows["predict"][0], rows["predict-package"][0]
    assert set(a) == set(b) == {"image", "prediction"}
    assert set(a["prediction"]) == set(b["prediction"]) == {"task", "width", "height", "detections"}
    for d in a["prediction"]["detections"] + b["prediction"]["detections"]:
        assert set(d) == {"xyxy", "class_id", "name", "score"} and d["name"] in COLOURS


@pytest.mark.slow
def test_semantic_run_reports_miou_everywhere(tmp_path: Path) -> None:
    """A semantic run is ranked by ``miou`` in evaluate, the manifest and the guard (never under ``map``), and the
    guard's number equals evaluate's on the validation split; predict and predict-package print the same keys."""
    from visionloop.cli.deploy_cmds import register as register_deploy
    from visionloop.cli.train_cmds import register as register_train
    from visionloop.core.annotations import SemanticMask
    from visionloop.core.package import load_package
    from visionloop.evaluation.detection_run import evaluate_run
    from visionloop.export.api import _int8_options, export_run
    from visionloop.export.quantize import evaluate_model
    from visionloop.storage.runs import load_config
    from visionloop.training.detection import DetectionHParams, train_detection

    p = Project.create(tmp_path / "sem", task="segmentation")
    ids = p.class_ids(list(COLOURS))
    rng = np.random.default_rng(1)
    for k in range(8):
        arr = rng.integers(90, 140, (64, 64, 3)).astype(np.uint8)
        mask = np.zeros((64, 64), np.int32)
        for j, name in enumerate(COLOURS):
            y = int(rng.integers(0, 30))
            arr[y:y + 20, 32 * j:32 * j + 20] = COLOURS[name]
            mask[y:y + 20, 32 * j:32 * j + 20] = ids[name]
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        [(iid, _)] = p.add_images([NewImage(sha256=p.blobs.put(buf.getvalue()), width=64, height=64, format="png",
                                            name=f"{k}.png")])
        p.save_annotation(iid, SemanticMask(mask), base_revision=None, author="t")
    create_version(p, name="v1", fractions=(0.5, 0.25, 0.25), phash_distance=-1)
    try:
        run = train_detection(p, version="v1", hparams=DetectionHParams(epochs=1, eval_size=64, batch_size=2),
                              progress=False).run_id
        val = evaluate_run(p, run, split="val", report=False)
        assert val["main_metric"] == "miou" and "map" not in val and 0.0 <= val["miou"] <= 1.0
        out = export_run(p, run, tmp_path / "sem-pkg")
        m = load_package(out).manifest
        assert m.main_metric in (None, "val_miou") and not any(k.endswith("_map") for k in m.metrics)
        options = _int8_options(p, load_config(p, run), max_drop=0.01, force=False, max_calibration=2,
                                max_validation=None)
        key, guard_fp32 = evaluate_model(load_package(out), options.validation)
        assert key == "miou" and guard_fp32 == pytest.approx(val["miou"], abs=1e-4)

        app = typer.Typer()
        register_train(app)
        register_deploy(app)
        image = tmp_path / "img.png"
        image.write_bytes(p.image_bytes(version_items(p, "v1", split="test")[0].image.id))
        keys = []
        for cmd in (["predict", str(p.root), str(image), "--run", run, "--json"],
                    ["predict-package", str(out), str(image), "--json"]):
            r = CliRunner().invoke(app, cmd)
            assert r.exit_code == 0, r.output
            row = json.loads(r.stdout.splitlines()[0])
            keys.append((set(row), set(row["prediction"]), {k for s in row["prediction"]["segments"] for k in s}))
        assert keys[0] == keys[1] == ({"image", "prediction"}, {"task", "width", "height", "segments"},
                                      {"class_id", "name", "score", "mask"})
    finally:
        p.close()
