"""Pre-annotation benchmark: editor actions per image needed to annotate BCCD test images to their ground truth,
without suggestions (every box drawn) and with a detector's suggestions (accept all above a threshold, then fix).

The detector is trained on the BCCD train split the way ``benchmarks/train_detect.py`` trains ours (Faster R-CNN on
the offline ImageNet MobileNetV2 FPN, :func:`visionloop.training.detection.train_detection`), bounded to a few epochs;
its test mAP50 (pycocotools) is reported beside the counts. The counting is
:mod:`visionloop.evaluation.annotation_effort` (a simulated annotator); the class an annotator keeps selected is the
most common class of the training boxes. Reported per threshold: mean actions per image with suggestions, the
baseline's (without), their ratio, and the kinds of actions; ``best`` is the threshold with the fewest actions.

Writes ``benchmarks/results/preannotation.json`` (``--smoke``: ``preannotation.smoke.json``, a few images).

    python benchmarks/preannotation.py --epochs 6     # the defaults for BCCD: about 12 min on 2 idle CPU cores
    python benchmarks/preannotation.py --train-images 96 --val-images 24 --epochs 3 --eval-size 288  # shorter
    python benchmarks/preannotation.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from train_detect import _project, _subset  # noqa: E402

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def simulate(gts: list[Any], preds: list[Any], *, thresholds: tuple[float, ...], default_class: int,
             ) -> dict[str, Any]:
    """Mean actions per image without suggestions and, per threshold, with them (and the ratio)."""
    from visionloop.evaluation.annotation_effort import effort_with_suggestions, effort_without_suggestions

    n = max(1, len(gts))
    without = [effort_without_suggestions(g.class_id, default_class=default_class) for g in gts]
    base = sum(e.total for e in without) / n
    rows = []
    for t in thresholds:
        efforts = [effort_with_suggestions(p.xyxy, p.class_id, p.score, g.xyxy, g.class_id, threshold=t,
                                           default_class=default_class) for p, g in zip(preds, gts, strict=True)]
        mean = sum(e.total for e in efforts) / n
        kinds = {k: round(sum(e.to_json()[k] for e in efforts) / n, 3)
                 for k in ("accept_all", "draws", "class_picks", "deletes", "adjusts", "class_changes")}
        rows.append({"threshold": t, "actions_per_image": round(mean, 3),
                     "ratio_without_over_with": round(base / mean, 3) if mean else None, "kinds": kinds})
    best = min(rows, key=lambda r: r["actions_per_image"])
    return {"images": len(gts), "objects": int(sum(len(g.class_id) for g in gts)),
            "without": {"actions_per_image": round(base, 3),
                        "kinds": {"draws": round(sum(e.draws for e in without) / n, 3),
                                  "class_picks": round(sum(e.class_picks for e in without) / n, 3)}},
            "with": rows, "best": best}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", type=Path, help="a detection project with a version (default: import BCCD)")
    ap.add_argument("--version", default=None)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--eval-size", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-images", type=int, default=None, help="train on the first N training images only")
    ap.add_argument("--val-images", type=int, default=None, help="validate on the first N validation images only")
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI (a few images, one epoch)")
    args = ap.parse_args(argv)

    import visionloop.training.detection as td
    from visionloop.data.detection import DetectionDataset
    from visionloop.evaluation.detection import coco_metrics
    from visionloop.models.predict import predict_dataset
    from visionloop.models.runs import load_run
    from visionloop.storage.versions import list_versions

    n_train, n_test = (4, 2) if args.smoke else (None, None)
    epochs = 1 if args.smoke else args.epochs
    size = 224 if args.smoke else args.eval_size
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(args.project, Path(tmp), limit=16 if args.smoke else None)
        version = args.version or list_versions(project)[-1].name
        info, by_split = td._version(project, version)
        by_split = _subset(by_split, n_train, n_test)
        if args.train_images:
            by_split = {**by_split, "train": by_split["train"][: args.train_images]}
        if args.val_images:
            by_split = {**by_split, "val": by_split["val"][: args.val_images]}
        original = td._version
        td._version = lambda p, v: (info, by_split)
        hp = td.DetectionHParams(epochs=epochs, batch_size=args.batch_size, eval_size=size,
                                 train_sizes=tuple(size + 32 * k for k in (-2, -1, 0, 1, 2)),
                                 max_size=int(size * 4 / 3), trainable_layers=4)
        try:
            t0 = time.perf_counter()
            run = td.train_detection(project, version=version, hparams=hp, seed=args.seed, progress=False)
            train_s = time.perf_counter() - t0
        finally:
            td._version = original
        model, _cfg = load_run(project, run.run_id)
        test_ds = DetectionDataset(by_split["test"], ontology=info.ontology, image_source=project.blobs.source)
        train_ds = DetectionDataset(by_split["train"], ontology=info.ontology, image_source=project.blobs.source)
        with torch.no_grad():
            preds = predict_dataset(model, test_ds, kind="detection")
        gts = [test_ds.ground_truth(i) for i in range(len(test_ds))]
        m = coco_metrics(test_ds, preds)["bbox"]
        counts = Counter(int(c) for i in range(len(train_ds)) for c in train_ds.ground_truth(i).class_id)
        default_class = counts.most_common(1)[0][0]
        project_class = {label: cid for cid, label in train_ds.labels.items()}
        result = simulate(gts, preds, thresholds=THRESHOLDS, default_class=default_class)
        data = {
            "dataset": {"project": str(args.project or "BCCD (imported)"), "version": version,
                        "train": len(by_split["train"]), "test": len(by_split["test"])},
            "model": {"name": _cfg.model["name"], "run": run.run_id, "epochs": epochs, "eval_size": size,
                      "train_s": round(train_s, 1), "test_map50": round(float(m["map50"]), 4),
                      "test_map": round(float(m["map"]), 4)},
            "default_class": info.ontology.by_id(project_class[default_class]).name,
            "rules": {"match_iou": 0.5, "tight_iou": 0.75,
                      "without": "one draw per object + one class pick when not the default class",
                      "with": "1 accept-all + 1 delete per false positive + 1 adjust per match with IoU < 0.75 + "
                              "1 class change per wrong class + 1 draw (and class pick) per missed object"},
            **result,
        }
        path = write_result("preannotation", data, smoke=args.smoke)
        best = result["best"]
        print(f"{path}: without {result['without']['actions_per_image']:.2f} actions/image, with suggestions "
              f"{best['actions_per_image']:.2f} at threshold {best['threshold']} "
              f"({best['ratio_without_over_with']}x fewer); test mAP50 {m['map50']:.3f}")
        project.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
