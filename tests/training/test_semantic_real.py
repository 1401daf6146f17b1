"""Semantic segmentation on real data: DSB2018 nuclei as class maps, through the CLI a user types.

DSB2018 comes as one PNG mask per nucleus (Kaggle layout); as semantic masks every pixel is ``background`` or
``nucleus``, written by the ``semantic_masks`` format (what ``visionloop export --format semantic_masks`` writes).
Images are byte-identical to the instance project's, so ``version create --seed 0`` gives the same 84 / 18 / 18 split
as the README's DSB numbers.

The full run is ``slow``: the target is test nucleus IoU >= 0.75 (published U-Nets: about 0.8); DeepLabV3, the
default before the U-Net, reached 0.13, the U-Net after 12 epochs 0.723 to 0.755, after 36 (the default) 0.760 and
0.763. CI runs the ``ci`` subset: 32 images, a few short epochs, checking that train -> evaluate -> predict work end
to end and that the nuclei are learnt well above the old default.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.formats import kaggle_masks, semantic_masks

runner = CliRunner()


def _cli(*args: object) -> dict:
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output[-3000:]
    return json.loads(r.stdout)


def _dsb_semantic(dsb_dir: Path, out: Path, n: int | None = None) -> Path:
    """The first ``n`` (all: None) DSB2018 samples as ``images/`` + ``masks/`` class maps (0 background, 1 nucleus)."""
    kaggle = out / "kaggle"
    kaggle.mkdir(parents=True)
    for sample in sorted((dsb_dir / "stage1_train").iterdir())[:n]:
        shutil.copytree(sample, kaggle / sample.name)
    semantic_masks.save(kaggle_masks.load(kaggle), out / "semantic")
    return out / "semantic"


def _train_evaluate(tmp_path: Path, source: Path, *options: object) -> tuple[Path, dict, dict, dict]:
    """init, import, version, train, evaluate on test; returns (project, version, run config, evaluation)."""
    proj = tmp_path / "nuclei"
    _cli("init", proj, "--task", "segmentation", "--json")
    imported = _cli("import", proj, source, "--json")
    assert imported["format"] == "semantic_masks" and not imported["problems"], imported
    version = _cli("version", "create", proj, "--seed", "0", "--json")
    run = _cli("train", proj, "--version", "v1", *options, "--json")
    config = json.loads((proj / "runs" / run["run"] / "config.json").read_text())
    assert "val_miou" in run and "val_map" not in run, run  # semantic runs report mIoU under its own name
    out = _cli("evaluate", proj, "--run", run["run"], "--json")
    print({"train": run, "test": {k: out[k] for k in ("miou", "per_class", "image_jaccard")}})  # the measured numbers
    return proj, version, config, out


@pytest.mark.slow
@pytest.mark.ci
def test_dsb2018_semantic_subset_learns_the_nuclei(dsb_dir: Path, tmp_path: Path) -> None:
    source = _dsb_semantic(dsb_dir, tmp_path / "dsb", 32)
    proj, _, config, out = _train_evaluate(tmp_path, source, "--epochs", "4", "--image-size", "256")
    assert config["model"]["name"] == "unet_mobilenet_v2" and config["extra"]["kind"] == "semantic"
    assert [c["name"] for c in config["classes"]] == ["background", "nucleus"]
    iou = {k: v["iou"] for k, v in out["per_class"].items()}
    # measured: test nucleus IoU 0.40 / 0.43, background 0.88 / 0.91 (1 / 2 threads; 32 images, 20 steps of 160 px
    # crops, ~90 s of training on a loaded 2-core machine). The floor is well above DeepLabV3's 0.13 on all of DSB: a
    # model that does not resolve the nuclei stays below it
    assert iou["nucleus"] >= 0.25, out
    assert iou["background"] >= 0.8, out
    image = sorted((tmp_path / "dsb" / "semantic" / "images").rglob("*.png"))[0]
    row = _cli("predict", proj, image, "--run", config["run_id"], "--json")  # one image: one JSON line
    names = {s["name"] for s in row["prediction"]["segments"]}
    assert names and names <= {"background", "nucleus"}, row  # a class map in the run's class names
    assert row["prediction"]["width"] == Image.open(image).width  # at the image's own size


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_dsb2018_semantic_full_nucleus_iou(dsb_dir: Path, tmp_path: Path) -> None:
    source = _dsb_semantic(dsb_dir, tmp_path / "dsb")
    _, version, config, out = _train_evaluate(tmp_path, source)
    assert version["splits"] == {"train": 84, "val": 18, "test": 18}, version["splits"]
    assert config["extra"]["eval_size"] == 320  # the median nucleus (0.055 of the image side) made 16 px
    assert config["preprocess"]["intensity"] == "per_image", config["extra"]  # brightness varies 34x
    assert config["preprocess"]["extra"]["tta_flips"] == ["h", "v"]  # predictions average the two mirror images
    assert config["hparams"]["epochs"] == 36, config["extra"]  # 750 optimiser steps of 21 (84 images, batches of 4)
    iou = {k: v["iou"] for k, v in out["per_class"].items()}
    # measured: nucleus IoU 0.716..0.746 after 12 epochs without test-time flips (six variants of size and epochs;
    # DeepLabV3 default: 0.13 / 0.85; per-image grey levels, chosen automatically here: the faintest image
    # 0.17 -> 0.50; random inversion: 0.613, bright-background images inverted: 0.614); 12 epochs with the flips:
    # 0.723 and 0.755; 36 epochs (750 steps, the default now): 0.763 and 0.760 (seeds 0 and 1, one thread)
    assert iou["nucleus"] >= 0.75, out
    assert iou["background"] >= 0.93, out
    assert np.isclose(out["miou"], (iou["nucleus"] + iou["background"]) / 2)
