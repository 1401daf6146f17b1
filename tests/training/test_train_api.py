"""train() end to end on tiny synthetic projects: run directory, config, load_run, evaluate, predict, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from visionloop.core.errors import NotFoundError, VisionloopError
from visionloop.storage.runs import read_metrics
from visionloop.training import load_run, train

FAST = {"model": "test_resnet", "pretrained": False, "image_size": 32}


def test_linear_classification_run_directory_and_reload(synthetic_project):
    p = synthetic_project("classification")
    res = train(p, version="v1", strategy="linear", progress=False, **FAST)
    d = res.run_dir
    assert d == p.root / "runs" / res.run_id
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["task"] == "classification"
    assert cfg["strategy"] == "linear"
    assert cfg["version"]["name"] == "v1" and len(cfg["version"]["hash"]) == 64
    assert [c["name"] for c in cfg["classes"]] == ["c0", "c1", "c2"]
    assert cfg["preprocess"]["size"] == [32, 32]
    assert cfg["model"]["kwargs"]["name"] == "test_resnet"
    assert "hflip" in cfg["augmentation"]
    assert (d / "checkpoints" / "best.pt").exists()
    assert read_metrics(d)[0]["val_balanced_accuracy"] == pytest.approx(res.metrics["val"]["balanced_accuracy"])
    assert res.metrics["val"]["balanced_accuracy"] >= 0.99  # colours are trivially separable

    model, rc = load_run(p, res.run_id)
    assert not model.training
    x = torch.randn(2, 3, 32, 32)
    again, _ = load_run(p, "latest")
    assert torch.allclose(model(x), again(x))
    assert rc.class_names == ["c0", "c1", "c2"]


def test_finetune_tagging_thresholds_evaluate_predict(synthetic_project, tmp_path):
    from visionloop.core.errors import ImageError
    from visionloop.evaluation.api import evaluate_run
    from visionloop.export.api import run_predictor

    p = synthetic_project("tagging")
    res = train(p, version="v1", strategy="finetune", epochs=2, progress=False, batch_size=8, **FAST)
    records = read_metrics(res.run_dir)
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"train_loss", "val_loss", "val_mAP", "lr"} <= set(records[0])
    cfg = json.loads((res.run_dir / "config.json").read_text())
    assert cfg["thresholds"] is not None and len(cfg["thresholds"]) == 3
    assert all(0 <= t <= 1 for t in cfg["thresholds"])

    out = evaluate_run(p, res.run_id, split="test")
    assert {"mAP", "accuracy", "balanced_accuracy", "per_class", "ece"} <= set(out)
    html = (res.run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "threshold" in html
    assert (res.run_dir / "eval-test.json").exists()

    img = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(img)
    (bad := tmp_path / "bad.jpg").write_bytes(b"not an image")
    with run_predictor(p, res.run_id) as pred:
        (_, first), (_, second) = pred.predict_paths([img, bad])
    assert {s.name for s in first.scores} == {"c0", "c1", "c2"}
    assert {t.name for t in first.tags} == {s.name for s, th in zip(first.scores, cfg["thresholds"], strict=True)
                                            if s.score >= th}  # the run's per-class thresholds
    assert isinstance(second, ImageError)


def test_wrong_inputs_say_how_to_fix(synthetic_project):
    p = synthetic_project("classification")
    with pytest.raises(NotFoundError, match="v1"):
        train(p, version="nope", progress=False, **FAST)
    with pytest.raises(VisionloopError, match="strategy"):
        train(p, version="v1", strategy="magic", progress=False, **FAST)
    with pytest.raises(NotFoundError, match="resnet"):
        train(p, version="v1", strategy="linear", progress=False, model="resnet5O", pretrained=False)
    with pytest.raises(NotFoundError, match="run"):
        load_run(p, "no-such-run")


def test_cli_train_evaluate_predict(synthetic_project, tmp_path):
    from visionloop.cli.train_cmds import register

    app = typer.Typer()
    register(app)
    p = synthetic_project("classification")
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(p.root), "--version", "v1", "--strategy", "linear", "--model", "test_resnet",
                            "--no-pretrained", "--image-size", "32", "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["run"]
    r = runner.invoke(app, ["evaluate", str(p.root), "--run", run, "--split", "test", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert {"accuracy", "balanced_accuracy", "per_class"} <= set(data)
    assert set(data["per_class"]) == {"c0", "c1", "c2"}
    img = next(iter(p.blobs.root.rglob("*")))
    while img.is_dir():
        img = next(iter(img.iterdir()))
    r = runner.invoke(app, ["predict", str(p.root), str(img), "--run", run, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["prediction"]["label"]["name"] in {"c0", "c1", "c2"}  # the one prediction schema
    r = runner.invoke(app, ["evaluate", str(p.root), "--run", "missing"])
    assert r.exit_code == 1
