"""Detection training benchmark: our ``train`` against torchvision's detection reference recipe, in one run.

Same data (a BCCD dataset version), same model (Faster R-CNN on the offline ImageNet MobileNetV2 FPN with the same
anchors), same evaluation size, same epochs. Differences are the recipes only:

* ours: :func:`visionloop.training.detection.train_detection` (SGD with warm-up + cosine, multi-scale training,
  photometric/scale/flip augmentation, best-epoch checkpoint on validation mAP);
* reference (``torchvision/references/detection/train.py`` defaults): SGD lr 0.02 * batch/16, momentum 0.9,
  weight decay 1e-4, linear warm-up (factor 1/1000 over the first epoch, at most 1000 iterations), MultiStepLR x0.1
  at 16/26 and 22/26 of the epochs, horizontal flip only, single scale, last epoch's weights.

Reported: training images/s (training steps only), test mAP50 / mAP (pycocotools) and batch-1 CPU inference latency.
Writes ``benchmarks/results/train_detect.json`` (``--smoke``: ``train_detect.smoke.json``, a few images, < 60 s).

    python benchmarks/train_detect.py --epochs 8            # full (hours on 2 CPU cores)
    python benchmarks/train_detect.py --smoke
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, write_result  # noqa: E402

BCCD = SHARED / "datasets" / "bccd"


def _project(path: Path | None, tmp: Path, *, limit: int | None = None) -> Any:
    """The given project, or BCCD imported into ``tmp`` (its first ``limit`` images for a smoke run)."""
    from visionloop.ingest import import_source
    from visionloop.storage import Project
    from visionloop.storage.versions import create_version, list_versions

    if path is not None:
        return Project.open(path)
    source = BCCD
    if limit is not None:  # a small Pascal VOC copy: importing and hashing all 364 images takes a while
        source = tmp / "bccd-small"
        for sub in ("Annotations", "JPEGImages"):
            (source / "BCCD" / sub).mkdir(parents=True)
        for xml in sorted((BCCD / "BCCD" / "Annotations").glob("*.xml"))[:limit]:
            (source / "BCCD" / "Annotations" / xml.name).write_bytes(xml.read_bytes())
            jpg = BCCD / "BCCD" / "JPEGImages" / f"{xml.stem}.jpg"
            (source / "BCCD" / "JPEGImages" / jpg.name).write_bytes(jpg.read_bytes())
    p = Project.create(tmp / "bccd", task="detection")
    import_source(p, source, progress=False)
    if not list_versions(p):
        create_version(p, seed=0)
    return p


def _subset(by_split: dict[str, list[Any]], n_train: int | None, n_test: int | None) -> dict[str, list[Any]]:
    if n_train is None:
        return by_split
    return {"train": by_split["train"][:n_train], "val": by_split["val"][: max(2, n_test or 2)],
            "test": by_split["test"][: n_test or 4]}


def _evaluate(model: torch.nn.Module, test_ds: Any) -> dict[str, float]:
    from visionloop.evaluation.detection import coco_metrics
    from visionloop.training.detection import predict_dataset

    preds = predict_dataset(model, test_ds, kind="detection")
    m = coco_metrics(test_ds, preds)["bbox"]
    return {"map": m["map"], "map50": m["map50"]}


def _latency(models: dict[str, torch.nn.Module], test_ds: Any, n: int) -> dict[str, dict[str, float]]:
    """Median batch-1 latency per model, measured interleaved (image by image) so background load hits both alike."""
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.no_grad():
        img, _ = test_ds[0]
        for m in models.values():
            m.eval()
            m([img])  # warm-up
        for i in range(n):
            img, _ = test_ds[i % len(test_ds)]
            for k, m in models.items():
                t = time.perf_counter()
                m([img])
                times[k].append(time.perf_counter() - t)
    return {k: {"median_ms": round(1000 * statistics.median(v), 1), "runs": n} for k, v in times.items()}


def _reference(spec: dict[str, Any], train_ds: Any, *, epochs: int, batch_size: int, seed: int) -> tuple[Any, float, int]:
    """torchvision references/detection train_one_epoch + the default schedule; returns (model, train s, images)."""
    from visionloop.data.detection import detection_collate
    from visionloop.training.detection import _build

    torch.manual_seed(seed)
    model = _build(spec, pretrained=None, weights=None)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = 0.02 * batch_size / 16
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    milestones = [max(1, round(epochs * 16 / 26)), max(1, round(epochs * 22 / 26))]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True, collate_fn=detection_collate,
                                         generator=torch.Generator().manual_seed(seed))
    seconds, images = 0.0, 0
    for epoch in range(epochs):
        model.train()
        warm = None
        if epoch == 0:
            iters = min(1000, len(loader) - 1)
            warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / 1000, total_iters=max(1, iters))
        for imgs, targets in loader:
            t = time.perf_counter()
            losses = model(imgs, targets)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if warm is not None:
                warm.step()
            seconds += time.perf_counter() - t
            images += len(imgs)
        sched.step()
    return model.eval(), seconds, images


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", type=Path, help="a detection project with a version (default: import BCCD)")
    ap.add_argument("--version", default=None)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--eval-size", type=int, default=416)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI (< 60 s)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    import visionloop.training.detection as td
    from visionloop.data.detection import DetectionDataset
    from visionloop.models.runs import load_run
    from visionloop.storage.runs import read_metrics
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
        original = td._version
        td._version = lambda p, v: (info, by_split)  # the same (sub)set for both recipes
        hp = td.DetectionHParams(epochs=epochs, batch_size=args.batch_size, eval_size=size,
                                 train_sizes=tuple(size + 32 * k for k in (-2, -1, 0, 1, 2)), max_size=int(size * 4 / 3),
                                 trainable_layers=4)
        try:
            t0 = time.perf_counter()
            ours = td.train_detection(project, version=version, hparams=hp, seed=args.seed, progress=False)
            ours_wall = time.perf_counter() - t0
        finally:
            td._version = original
        records = read_metrics(ours.run_dir)
        ours_step_s = sum(r["epoch_seconds"] - r.get("val_seconds", 0.0) for r in records)  # training steps only
        model, cfg = load_run(project, ours.run_id)
        test_ds = DetectionDataset(by_split["test"], ontology=info.ontology, image_source=project.blobs.source)
        ours_metrics = _evaluate(model, test_ds)
        n_images = len(by_split["train"]) * len(records)

        spec = dict(cfg.model)
        spec["kwargs"] = {**spec["kwargs"], "min_size": size}  # reference: single scale
        train_ds = DetectionDataset(by_split["train"], ontology=info.ontology, image_source=project.blobs.source,
                                    transforms=_hflip_only())
        t0 = time.perf_counter()
        ref_model, ref_s, ref_images = _reference(spec, train_ds, epochs=epochs, batch_size=args.batch_size,
                                                  seed=args.seed)
        ref_wall = time.perf_counter() - t0
        ref_metrics = _evaluate(ref_model, test_ds)
        latency = _latency({"ours": model, "reference": ref_model}, test_ds, 3 if args.smoke else 30)
        data = {
            "dataset": {"project": str(args.project or "BCCD (imported)"), "version": version,
                        "train": len(by_split["train"]), "test": len(by_split["test"])},
            "model": cfg.model["name"], "epochs": epochs, "batch_size": args.batch_size, "eval_size": size,
            "torch_threads": torch.get_num_threads(),
            "ours": {"run": ours.run_id, "train_images_per_s": round(n_images / max(ours_step_s, 1e-6), 3),
                     "wall_s": round(ours_wall, 1), **ours_metrics, "latency_batch1": latency["ours"],
                     "best_epoch": ours.metrics.get("best_epoch")},
            "reference": {"train_images_per_s": round(ref_images / max(ref_s, 1e-6), 3), "wall_s": round(ref_wall, 1),
                          **ref_metrics, "latency_batch1": latency["reference"],
                          "recipe": "torchvision references/detection: SGD 0.02*bs/16, momentum 0.9, wd 1e-4, "
                                    "warm-up, MultiStepLR 16/26 22/26, hflip only, single scale"},
        }
        path = write_result("train_detect", data, smoke=args.smoke)
        print(path.read_text())
        project.close()
    return 0


def _hflip_only() -> Any:
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomHorizontalFlip(0.5), v2.ToDtype(torch.float32, scale=True),
                       v2.SanitizeBoundingBoxes()])


if __name__ == "__main__":
    raise SystemExit(main())
