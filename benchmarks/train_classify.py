"""Benchmark: ``visionloop train`` against the classic torchvision transfer-learning recipe, on BCCD cell crops.

Both start from the same pretrained backbone (timm ``tf_efficientnet_lite0``, offline ImageNet weights) and use the
same data and split (version v1 of the crops derived from the BCCD boxes). The baseline is what a careful engineer
writes without us (the PyTorch "transfer learning for computer vision" tutorial): full fine-tuning at 224 px,
RandomResizedCrop + horizontal flip, SGD momentum 0.9, lr 0.001, StepLR(7, 0.1), batch 32, images decoded from disk
every epoch. We time each epoch and score the test split after it (scoring time excluded), which gives the
baseline's time-to-accuracy curve; ours is timed end to end with ``train(strategy="auto")``.

Also measured: image decoding throughput against model throughput (is decoding the bottleneck?).

    python benchmarks/train_classify.py                # full run, writes benchmarks/results/train_classify.json
    python benchmarks/train_classify.py --smoke        # 8 source images, linear strategy, one 8-image baseline batch
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, write_result  # noqa: E402

BCCD = SHARED / "datasets" / "bccd" / "BCCD"
BACKBONE = "tf_efficientnet_lite0"


def build_projects(work: Path, *, smoke: bool) -> tuple[object, float]:
    """BCCD -> detection project -> version v1 -> crops project -> version v1; returns (crops project, seconds)."""
    from visionloop.ingest import import_source
    from visionloop.quality.derive import derive_project
    from visionloop.storage import Project
    from visionloop.storage.versions import create_version

    t = time.perf_counter()
    src_dir = BCCD
    if smoke:  # a small VOC folder with the first 8 images
        src_dir = work / "voc"
        (src_dir / "Annotations").mkdir(parents=True)
        (src_dir / "JPEGImages").mkdir()
        for xml in sorted((BCCD / "Annotations").glob("*.xml"))[:8]:
            shutil.copy(xml, src_dir / "Annotations")
            shutil.copy(BCCD / "JPEGImages" / f"{xml.stem}.jpg", src_dir / "JPEGImages")
    det = Project.create(work / "bccd", task="detection")
    import_source(det, src_dir, format="voc")
    create_version(det, name="v1")
    derive_project(det, "v1", to="crops", out=work / "crops")
    det.close()
    crops = Project.open(work / "crops")
    create_version(crops, name="v1")
    return crops, time.perf_counter() - t


def measure_decoding(project: object, shas: list[str], *, size: int) -> dict[str, float]:
    """Images per second: full decode from the blob store, and from the decode cache afterwards."""
    from visionloop.core.imageio import decode
    from visionloop.core.preprocess import Preprocess
    from visionloop.data.cache import ImageCache

    t = time.perf_counter()
    for s in shas:
        decode(project.blobs.path(s))
    decode_s = time.perf_counter() - t
    cache = ImageCache(project.blobs, preprocess=Preprocess(size=(size, size)))
    for s in shas:
        cache.get(s)
    t = time.perf_counter()
    for s in shas:
        cache.get(s)
    cached_s = time.perf_counter() - t
    return {"images": len(shas), "decode_per_s": len(shas) / decode_s, "cached_per_s": len(shas) / max(cached_s, 1e-9)}


class _Files(torch.utils.data.Dataset):
    """What the tutorial's ImageFolder does: open and decode the file every time."""

    def __init__(self, project: object, shas: list[str], targets: np.ndarray, transform: object) -> None:
        self.project, self.shas, self.targets, self.transform = project, shas, targets, transform

    def __len__(self) -> int:
        return len(self.shas)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.project.blobs.path(self.shas[i])) as im:
            return self.transform(im.convert("RGB")), int(self.targets[i])


def baseline(project: object, *, epochs: int, seed: int, batch_size: int = 32,
             max_train: int | None = None, eval_every: int = 27,
             max_seconds: float | None = None) -> dict[str, object]:
    """The classic torchvision recipe. Scores the test split every ``eval_every`` batches (scoring not timed) and stops
    after ``epochs`` or once ``max_seconds`` of training time are spent; returns the time-to-accuracy curve."""
    import timm
    from sklearn.metrics import balanced_accuracy_score

    from visionloop.data.datasets import class_list, labelled_items
    from visionloop.models.weights import pretrained_model
    from visionloop.storage.versions import get_version, version_items

    torch.manual_seed(seed)
    classes = class_list(get_version(project, "v1").ontology)
    ids = [c["id"] for c in classes]
    data = {s: labelled_items(version_items(project, "v1", split=s), task="classification", class_ids=ids)
            for s in ("train", "test")}
    if max_train is not None:
        d = data["train"]
        d.shas, d.targets = d.shas[:max_train], d.targets[:max_train]
    full, info = pretrained_model(BACKBONE, library="timm", allow_download=False)
    assert isinstance(full, timm.models.EfficientNet)
    full.reset_classifier(len(classes))
    norm = v2.Normalize(list(info.mean), list(info.std))
    train_tf = v2.Compose([v2.RandomResizedCrop(224), v2.RandomHorizontalFlip(), v2.ToImage(),
                           v2.ToDtype(torch.float32, scale=True), norm])
    test_tf = v2.Compose([v2.Resize(256), v2.CenterCrop(224), v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                          norm])
    train_dl = torch.utils.data.DataLoader(_Files(project, data["train"].shas, data["train"].targets, train_tf),
                                           batch_size=batch_size, shuffle=True, num_workers=0)
    test_dl = torch.utils.data.DataLoader(_Files(project, data["test"].shas, data["test"].targets, test_tf),
                                          batch_size=64, shuffle=False, num_workers=0)
    opt = torch.optim.SGD(full.parameters(), lr=0.001, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    crit = nn.CrossEntropyLoss()
    curve: list[dict[str, float]] = []
    train_s, seen = 0.0, 0

    def score(epoch: float) -> None:
        full.eval()
        preds, ys = [], []
        with torch.no_grad():
            for x, y in test_dl:
                preds.append(full(x).argmax(1).numpy())
                ys.append(y.numpy())
        p, y = np.concatenate(preds), np.concatenate(ys)
        curve.append({"epoch": round(epoch, 3), "images_seen": seen, "train_seconds": round(train_s, 1),
                      "test_accuracy": float((p == y).mean()),
                      "test_balanced_accuracy": float(balanced_accuracy_score(y, p))})
        print(f"baseline: {curve[-1]}", flush=True)
        full.train()

    n_batches = len(train_dl)
    stop = False
    for epoch in range(epochs):
        full.train()
        t = time.perf_counter()
        for b, (x, y) in enumerate(train_dl, 1):
            opt.zero_grad()
            crit(full(x), y).backward()
            opt.step()
            seen += len(y)
            train_s += time.perf_counter() - t
            if b % eval_every == 0 or b == n_batches or (max_seconds and train_s >= max_seconds):
                score(epoch + b / n_batches)
                if max_seconds and train_s >= max_seconds:
                    stop = True
                    break
            t = time.perf_counter()
        sched.step()
        if stop:
            break
    return {"curve": curve, "final": curve[-1]}


def ours(project: object, *, seed: int, strategy: str) -> dict[str, object]:
    from visionloop.evaluation.api import evaluate_run
    from visionloop.training import train

    t = time.perf_counter()
    res = train(project, version="v1", model=BACKBONE, strategy=strategy, seed=seed, progress=False,
                log=lambda s: print(s, flush=True))
    train_s = time.perf_counter() - t
    ev = evaluate_run(project, res.run_id, split="test", report=False)
    return {"run": res.run_id, "strategy": res.metrics["strategy"], "strategy_reason": res.metrics["strategy_reason"],
            "train_seconds": round(train_s, 1), "test_accuracy": ev["accuracy"],
            "test_balanced_accuracy": ev["balanced_accuracy"], "val": res.metrics["val"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a few images, 1 baseline epoch (< 60 s)")
    ap.add_argument("--baseline-epochs", type=int, default=3)
    ap.add_argument("--budget-factor", type=float, default=3.0,
                    help="stop the baseline after this many times our training time (the goal is <= 1/3 of its time)")
    ap.add_argument("--eval-every", type=int, default=27, help="score the baseline every N batches (~1/4 epoch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategy", default="auto", help="our strategy (auto, linear, frozen, finetune)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the projects here (default: a temp dir)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vl-bench-"))
    if args.workdir and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    crops, prep_s = build_projects(work, smoke=args.smoke)
    from visionloop.storage.versions import get_version, version_items

    summary = get_version(crops, "v1").summary
    shas = [it.image.sha256 for it in version_items(crops, "v1", split="train")][: 300 if not args.smoke else 60]
    decoding = measure_decoding(crops, shas, size=128)
    print(f"decoding: {decoding}", flush=True)
    o = ours(crops, seed=args.seed, strategy="linear" if args.smoke else args.strategy)
    print(f"ours: {o}", flush=True)
    b = baseline(crops, epochs=1 if args.smoke else args.baseline_epochs, seed=args.seed,
                 max_train=8 if args.smoke else None, batch_size=8 if args.smoke else 32, eval_every=args.eval_every,
                 max_seconds=None if args.smoke else args.budget_factor * o["train_seconds"])
    target = o["test_accuracy"] - 0.005
    reach = next((c for c in b["curve"] if c["test_accuracy"] >= target), None)
    result = {
        "data": {"crops": summary["images"], "splits": summary["splits"], "prepare_seconds": round(prep_s, 1)},
        "backbone": BACKBONE,
        "decoding": decoding,
        "ours": o,
        "baseline": {"recipe": "full fine-tuning 224 px, SGD(momentum 0.9, lr 0.001), StepLR(7, 0.1), batch 32, "
                     "RandomResizedCrop+flip, decode every epoch", **b},
        "time_to_accuracy": {
            "target_test_accuracy": target,
            "ours_seconds": o["train_seconds"],
            "baseline_seconds": reach["train_seconds"] if reach else None,
            "baseline_reached": reach is not None,
            "baseline_seconds_run": b["final"]["train_seconds"],
            "baseline_stopped_at_budget": b["final"]["train_seconds"] >= args.budget_factor * o["train_seconds"],
            "speedup_vs_baseline_run": round(b["final"]["train_seconds"] / max(o["train_seconds"], 1e-9), 2),
        },
        "accuracy_delta": o["test_accuracy"] - b["final"]["test_accuracy"],
    }
    path = write_result("train_classify", result, smoke=args.smoke)
    print(f"wrote {path}")
    crops.close()
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
