"""Semantic segmentation benchmark: the default U-Net recipe against the old default (DeepLabV3), in one run.

Data: DSB2018 nuclei as semantic masks (every pixel ``background`` or ``nucleus``), the project's version split
(``version create --seed 0``: 84 train / 18 val / 18 test). Both train with
:func:`visionloop.training.detection.train_detection` and are scored on the test split by ``evaluate``:

* ours: ``unet_mobilenet_v2`` with the semantic defaults (input size from the object-size rule, random crops,
  AdamW, cross-entropy + Dice, best epoch on validation mIoU);
* old default: ``deeplabv3_mobilenet_v2`` (stride 16) with the recipe it had: SGD 0.005 x batch 2, 6 epochs, whole
  images stretched to 256 px (the median image side; objects were not looked at). Its loss is today's (CE + Dice).

Reported per model: test nucleus IoU, background IoU, mIoU, wall seconds, epochs, input size. Writes
``benchmarks/results/train_semantic.json`` (``--smoke``: ``train_semantic.smoke.json``, 10 images, 1 epoch each).

    python benchmarks/train_semantic.py            # full (an hour or more on 2 busy CPU cores)
    python benchmarks/train_semantic.py --smoke
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, write_result  # noqa: E402

DSB = SHARED / "datasets" / "dsb2018-nuclei"


def _project(tmp: Path, limit: int | None) -> Any:
    """DSB2018 (its first ``limit`` samples) as semantic masks, imported, with version v1 (seed 0)."""
    from visionloop.formats import kaggle_masks, semantic_masks
    from visionloop.ingest import import_source
    from visionloop.storage import Project
    from visionloop.storage.versions import create_version

    kaggle = tmp / "kaggle"
    kaggle.mkdir()
    for sample in sorted((DSB / "stage1_train").iterdir())[:limit]:
        shutil.copytree(sample, kaggle / sample.name)
    semantic_masks.save(kaggle_masks.load(kaggle), tmp / "semantic")
    p = Project.create(tmp / "nuclei", task="segmentation")
    import_source(p, tmp / "semantic", progress=False)
    create_version(p, name="v1", seed=0)
    return p


def _run(project: Any, *, model: str, hparams: Any, old_recipe: bool) -> dict[str, Any]:
    import visionloop.training.detection as td
    from visionloop.evaluation.api import evaluate_run

    original = td.semantic_hparams
    if old_recipe:  # the detector hyper-parameters as given, as semantic runs had them before
        td.semantic_hparams = lambda hp: hp
    try:
        t0 = time.perf_counter()
        run = td.train_detection(project, version="v1", model=model, hparams=hparams, progress=False)
        wall = time.perf_counter() - t0
    finally:
        td.semantic_hparams = original
    out = evaluate_run(project, run.run_id, split="test", report=False)
    iou = {k: v["iou"] for k, v in out["per_class"].items()}
    return {"model": model, "run": run.run_id, "nucleus_iou": iou["nucleus"], "background_iou": iou["background"],
            "miou": out["miou"], "wall_s": round(wall, 1), "epochs": run.metrics.get("epochs"),
            "best_epoch": run.metrics.get("best_epoch"), "val_miou": run.metrics.get("val_miou")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="10 images, 1 epoch per model (CI)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from visionloop.training.detection import DetectionHParams

    with tempfile.TemporaryDirectory() as tmp:
        project = _project(Path(tmp), 10 if args.smoke else None)
        smoke = {"epochs": 1, "eval_size": 128} if args.smoke else {}
        ours = _run(project, model="unet_mobilenet_v2", hparams=DetectionHParams(**smoke), old_recipe=False)
        old = _run(project, model="deeplabv3_mobilenet_v2", old_recipe=True,
                   hparams=DetectionHParams(**{"epochs": 6, "eval_size": 256, **smoke}))
        configs = {r["run"]: project.root / "runs" / r["run"] / "config.json" for r in (ours, old)}
        for r in (ours, old):
            cfg = json.loads(configs[r["run"]].read_text())
            r["eval_size"], r["hparams"] = cfg["extra"]["eval_size"], {
                k: cfg["hparams"][k] for k in ("optimizer", "lr", "batch_size", "crop_size", "epochs")}
        data = {"dataset": "DSB2018 stage1_train as semantic masks (background, nucleus), version v1 seed 0",
                "torch_threads": torch.get_num_threads(), "ours": ours, "old_default": old}
        path = write_result("train_semantic", data, smoke=args.smoke)
        print(path.read_text())
        project.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
