"""Label efficiency of active learning, simulated: the stored labels play the human who labels what is asked.

Per dataset and seed, a test set is held out (BCCD: by source image, so no smear is on both sides) and the rest is
the unlabelled pool. Every strategy starts from the same few random labels (``--start``), then asks for a batch
(``--batch``) at a time, the "human" answers with the stored label, a logistic regression on frozen features is
retrained and its test accuracy (and balanced accuracy) recorded, up to ``--budget`` labels. Strategies
(``visionloop.active``): ``random``; ``entropy``, ``margin``, ``least_confidence`` (the top of the ranking);
``margin+kcenter`` (k-center greedy over the 5x batch most uncertain, away from the labelled points, as
``visionloop next --diversity kcenter`` does); ``margin+cluster`` (the candidate nearest the centre of each of n
clusters of the 10x batch most uncertain, KMeans weighted by uncertainty: ``visionloop next``'s default); ``typiclust`` (the cold start while fewer than ``TYPICLUST_UNTIL``
labels exist, then margin+kcenter: the switch ``visionloop next`` makes once a model is deployed).

Datasets (real):
* ``bccd``: BCCD's cell boxes (Pascal VOC, WBC / RBC / Platelets) as crops, embedded with the offline ImageNet
  EfficientNet-Lite0 (``visionloop embed`` crops: 1280-d, box + 10% context, 128 px);
* ``digits``: scikit-learn's bundled handwritten digits (1,797 8x8 images, 10 classes; pixels as features).

Reported per dataset: the accuracy with the whole pool labelled, and for each strategy the labels its mean curve
needs to reach 95% of it, with the ratio to random's (the goal: at most 0.40). ``--detection`` adds BCCD detection
rounds (a Faster R-CNN trained a few epochs on the labelled images each round; images ranked by per-box
uncertainty; the first round, the same for every strategy, is trained once per seed); it is expensive and off by
default.

Results: benchmarks/results/active_learning.json and active_learning.png (``--smoke``: a small run,
active_learning.smoke.json).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/active_learning.py [--smoke] [--detection]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from common import RESULTS, SHARED, write_result  # noqa: E402

from visionloop.active.acquisition import classification_scores, detection_uncertainty  # noqa: E402
from visionloop.active.diversity import cluster_top, diverse_top, typiclust  # noqa: E402

STRATEGIES = ("random", "entropy", "margin", "least_confidence", "margin+kcenter", "margin+cluster", "typiclust")
TARGET = 0.95
TYPICLUST_UNTIL = 100
"""Labels after which the ``typiclust`` strategy hands over to margin+kcenter (TypiClust is for the first labels)."""
GOAL_RATIO = 0.40


# ---- data ---------------------------------------------------------------------------------------------------------
class Data:
    """Features ``x`` (N, D), labels ``y`` (N,), ``groups`` (N,) that must stay on one side of the test split."""

    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, classes: list[str],
                 seconds: float) -> None:
        self.name, self.x, self.y, self.groups, self.classes, self.seconds = name, x, y, groups, classes, seconds


def digits_data(limit: int | None) -> Data:
    from sklearn.datasets import load_digits

    t = time.perf_counter()
    d = load_digits()
    x, y = d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return Data("digits", x, y, np.arange(len(y)), [str(c) for c in d.target_names], time.perf_counter() - t)


def bccd_data(work: Path, images: int | None) -> Data:
    """BCCD's boxes as embedded crops (the project's own ``embed`` of crops), labelled by their box class. A project
    already in ``work`` (``--keep``) is reused: ``embed`` then finds nothing missing."""
    from label_errors import voc_subset

    from visionloop.ingest import import_source
    from visionloop.models.embed import embed_project, load_embedder
    from visionloop.storage import Project
    from visionloop.storage.embeddings import EmbeddingSet

    t = time.perf_counter()
    reuse = (work / "det").is_dir()
    n = len(list((work / "voc" / "Annotations").glob("*.xml"))) if reuse else \
        voc_subset(SHARED / "datasets" / "bccd" / "BCCD", work / "voc", images)
    with Project.open(work / "det") if reuse else Project.create(work / "det", task="detection") as p:
        if not reuse:
            import_source(p, work / "voc", format="voc")
        embedder = load_embedder("tf_efficientnet_lite0", project=p)
        report = embed_project(p, embedder, kind="crops", batch_size=64)
        store = EmbeddingSet(p.root, report.key, "crops")
        x, rows = np.asarray(store.vectors(), np.float32), store.rows()
        onto = p.ontology()
    ids = sorted({int(c) for c in rows.class_id})
    names = {c.id: c.name for c in onto.classes}
    y = np.searchsorted(ids, rows.class_id).astype(np.int64)
    print(f"BCCD: {n} images, {len(y)} crops embedded in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return Data("bccd", x, y, rows.image_id.copy(), [names[i] for i in ids], time.perf_counter() - t)


# ---- the simulation -----------------------------------------------------------------------------------------------
def split(data: Data, seed: int, test_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) indices, whole groups on one side."""
    rng = np.random.default_rng(seed)
    groups = np.unique(data.groups)
    test_groups = rng.choice(groups, size=int(round(test_fraction * len(groups))), replace=False)
    is_test = np.isin(data.groups, test_groups)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


class Linear:
    """Logistic regression on the features; probabilities over every class of the dataset (unseen ones get 0)."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    def fit(self, x: np.ndarray, y: np.ndarray) -> Linear:
        from sklearn.linear_model import LogisticRegression

        self.seen = np.unique(y)
        self.model = None
        if len(self.seen) > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.model = LogisticRegression(C=1.0, max_iter=500).fit(x, y)
        return self

    def probs(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), self.n_classes))
        if self.model is None:
            out[:, self.seen] = 1.0 / len(self.seen)
        else:
            out[:, self.model.classes_] = self.model.predict_proba(x)
        return out


def scores(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import balanced_accuracy_score

    pred = p.argmax(1)
    return float((pred == y).mean()), float(balanced_accuracy_score(y, pred))


Chooser = Callable[[np.ndarray, np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]
"""(pool features, labelled features, pool probabilities, n, rng) -> pool positions to label."""


def _top(acq: str) -> Chooser:
    return lambda x, xl, p, n, rng: np.argsort(-classification_scores(p, acq), kind="stable")[:n]


def _kcenter(x: np.ndarray, xl: np.ndarray, p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray([k.index for k in diverse_top(classification_scores(p, "margin"), x, n, labelled=xl)])


def _cluster(x: np.ndarray, xl: np.ndarray, p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    scores = classification_scores(p, "margin")
    return np.asarray([k.index for k in cluster_top(scores, x, n, seed=int(rng.integers(1 << 30)))])


def _typiclust(x: np.ndarray, xl: np.ndarray, p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(xl) >= TYPICLUST_UNTIL:
        return _kcenter(x, xl, p, n, rng)
    return np.asarray([k.index for k in typiclust(x, n, labelled=xl, seed=int(rng.integers(1 << 30)))])


CHOOSERS: dict[str, Chooser] = {
    "random": lambda x, xl, p, n, rng: rng.choice(len(x), size=n, replace=False),
    "entropy": _top("entropy"), "margin": _top("margin"), "least_confidence": _top("least_confidence"),
    "margin+kcenter": _kcenter, "margin+cluster": _cluster, "typiclust": _typiclust,
}


def simulate(data: Data, strategy: str, seed: int, *, start: int, batch: int, budget: int) -> dict[str, Any]:
    """One curve: labels used -> test accuracy and balanced accuracy."""
    pool, test = split(data, seed)
    rng = np.random.default_rng(seed + 1000)
    labelled = list(rng.choice(pool, size=start, replace=False))  # the same start for every strategy
    rng = np.random.default_rng(seed + 2000 + STRATEGIES.index(strategy))
    curve: dict[str, list[float]] = {"labels": [], "accuracy": [], "balanced_accuracy": []}
    n_classes = len(data.classes)
    while True:
        model = Linear(n_classes).fit(data.x[labelled], data.y[labelled])
        acc, bal = scores(data.y[test], model.probs(data.x[test]))
        curve["labels"].append(len(labelled))
        curve["accuracy"].append(round(acc, 4))
        curve["balanced_accuracy"].append(round(bal, 4))
        if len(labelled) >= min(budget, len(pool)):
            return curve
        rest = np.setdiff1d(pool, labelled)
        n = min(batch, budget - len(labelled), len(rest))
        picked = CHOOSERS[strategy](data.x[rest], data.x[labelled], model.probs(data.x[rest]), n, rng)
        labelled.extend(rest[picked].tolist())


def full_accuracy(data: Data, seed: int) -> tuple[float, float]:
    pool, test = split(data, seed)
    model = Linear(len(data.classes)).fit(data.x[pool], data.y[pool])
    return scores(data.y[test], model.probs(data.x[test]))


def labels_to_reach(labels: list[int], curve: list[float], target: float) -> int | None:
    return next((n for n, a in zip(labels, curve, strict=True) if a >= target), None)


def run_dataset(data: Data, *, seeds: int, start: int, batch: int, budget: int) -> dict[str, Any]:
    t = time.perf_counter()
    full = [full_accuracy(data, s) for s in range(seeds)]
    curves = {s: [simulate(data, s, seed, start=start, batch=batch, budget=budget) for seed in range(seeds)]
              for s in STRATEGIES}
    out: dict[str, Any] = {"samples": len(data.y), "features": int(data.x.shape[1]), "classes": dict(zip(
        data.classes, np.bincount(data.y, minlength=len(data.classes)).tolist(), strict=True)),
        "seeds": seeds, "start": start, "batch": batch, "budget": budget, "metrics": {}, "curves": {}}
    for m, col in (("accuracy", 0), ("balanced_accuracy", 1)):
        f = float(np.mean([x[col] for x in full]))
        target = TARGET * f
        need = {}
        for s in STRATEGIES:
            labels = curves[s][0]["labels"]
            mean = np.mean([c[m] for c in curves[s]], axis=0)
            need[s] = labels_to_reach(labels, mean.tolist(), target)
            out["curves"].setdefault(s, {"labels": labels})[m] = {
                "mean": [round(float(v), 4) for v in mean],
                "std": [round(float(v), 4) for v in np.std([c[m] for c in curves[s]], axis=0)]}
        rnd = need["random"]
        out["metrics"][m] = {
            "full_data": round(f, 4), "target": round(target, 4), "labels_to_target": need,
            "ratio_to_random": {s: (round(v / rnd, 3) if v is not None and rnd else None) for s, v in need.items()},
            "random_reached_target": rnd is not None,
        }
    out["seconds"] = {"features": round(data.seconds, 1), "simulation": round(time.perf_counter() - t, 1)}
    return out


# ---- detection ----------------------------------------------------------------------------------------------------
def run_detection(work: Path, *, images: int | None, seeds: int, start: int, batch: int, rounds: int,
                  epochs: int, size: int, val_images: int) -> dict[str, Any]:
    """BCCD detection rounds: train the default detector (:func:`visionloop.training.detection.train_detection`,
    ``epochs`` at ``size`` px) on the labelled images, then label ``batch`` more images of the pool: the most
    uncertain by per-box uncertainty (binary entropy of each box score down to 0.05, the mean of the top 3 per image,
    as ``visionloop next`` ranks them) or at random; test mAP50 (pycocotools) after each round."""
    import torch
    from train_detect import _project

    import visionloop.training.detection as td
    from visionloop.data.detection import DetectionDataset
    from visionloop.evaluation.detection import coco_metrics
    from visionloop.models.predict import predict_dataset
    from visionloop.models.runs import load_run
    from visionloop.storage.versions import list_versions

    t0 = time.perf_counter()
    project = _project(None, work, limit=images)
    version = list_versions(project)[-1].name
    info, by_split = td._version(project, version)
    pool, val, test = by_split["train"], by_split["val"][:val_images], by_split["test"]
    hp = td.DetectionHParams(epochs=epochs, batch_size=2, eval_size=size, train_sizes=(size - 32, size, size + 32),
                             max_size=int(size * 4 / 3), trainable_layers=4)

    def dataset(items: list[Any]) -> Any:
        return DetectionDataset(items, ontology=info.ontology, image_source=project.blobs.source)

    curves: dict[str, list[dict[str, list[float]]]] = {"random": [], "box_uncertainty": []}
    original = td._version
    try:
        for seed in range(seeds):
            first = np.random.default_rng(seed).choice(len(pool), size=min(start, len(pool)), replace=False).tolist()
            first_round: tuple[Any, float] | None = None  # every strategy's round 0: the same images and seed
            for strategy in curves:
                labelled, rng = list(first), np.random.default_rng(seed + 7)
                curve: dict[str, list[float]] = {"labels": [], "map50": []}
                for r in range(rounds + 1):
                    if r == 0 and first_round is not None:
                        model, map50 = first_round
                    else:
                        chosen = {"train": [pool[i] for i in labelled], "val": val, "test": test}
                        td._version = lambda p, v, c=chosen: (info, c)
                        run = td.train_detection(project, version=version, hparams=hp, seed=seed, progress=False)
                        model, _ = load_run(project, run.run_id)
                        with torch.no_grad():
                            m = coco_metrics(dataset(test), predict_dataset(model, dataset(test), kind="detection"))
                        map50 = round(float(m["bbox"]["map50"]), 4)
                        if r == 0:
                            first_round = model, map50
                    curve["labels"].append(len(labelled))
                    curve["map50"].append(map50)
                    print(f"detection {strategy} seed {seed}: {len(labelled)} images -> test mAP50 "
                          f"{curve['map50'][-1]:.3f}", file=sys.stderr)
                    rest = [i for i in range(len(pool)) if i not in set(labelled)]
                    if r == rounds or not rest:
                        break
                    n = min(batch, len(rest))
                    if strategy == "random":
                        picked = rng.choice(len(rest), size=n, replace=False)
                    else:
                        with torch.no_grad():
                            boxes = predict_dataset(model, dataset([pool[i] for i in rest]), kind="detection")
                        u = detection_uncertainty([np.asarray(b.score if b.score is not None else []) for b in boxes])
                        picked = np.argsort(-u, kind="stable")[:n]
                    labelled += [rest[j] for j in picked]
                curves[strategy].append(curve)
    finally:
        td._version = original
        project.close()
    out: dict[str, Any] = {"images": {"pool": len(pool), "val": len(val), "test": len(test)}, "seeds": seeds,
                           "start": start, "batch": batch, "rounds": rounds, "epochs": epochs, "size": size,
                           "curves": {}}
    for s, cs in curves.items():
        out["curves"][s] = {"labels": cs[0]["labels"],
                            "map50_mean": [round(float(v), 4) for v in np.mean([c["map50"] for c in cs], axis=0)]}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


# ---- output -------------------------------------------------------------------------------------------------------
def plot(results: dict[str, Any], path: Path, detection: dict[str, Any] | None = None) -> None:
    """Test accuracy against labels used, per dataset (mean and spread over seeds), and the detection rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    panels = len(names) + (detection is not None)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.6), squeeze=False)
    if detection is not None:
        ax = axes[0][-1]
        for s, c in detection["curves"].items():
            ax.plot(c["labels"], c["map50_mean"], marker="o", label=s, ls="--" if s == "random" else "-")
        ax.set_title(f"BCCD detection: {detection['epochs']} epoch(s) a round, {detection['seeds']} seed(s)")
        ax.set_xlabel("labelled images")
        ax.set_ylabel("test mAP50")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax, name in zip(axes[0], names, strict=False):
        r = results[name]
        for s, c in r["curves"].items():
            x = np.asarray(c["labels"])
            m, sd = np.asarray(c["accuracy"]["mean"]), np.asarray(c["accuracy"]["std"])
            ax.plot(x, m, label=s, lw=2 if s == "random" else 1.4, ls="--" if s == "random" else "-")
            ax.fill_between(x, m - sd, m + sd, alpha=0.12)
        t = r["metrics"]["accuracy"]
        ax.axhline(t["target"], color="k", lw=0.8, ls=":")
        ax.text(x[-1], t["target"], f" 95% of full data ({t['full_data']:.3f})", ha="right", va="bottom", fontsize=8)
        ax.set_title(f"{name}: {r['samples']} samples, {len(r['classes'])} classes, {r['seeds']} seeds")
        ax.set_xlabel("labels used")
        ax.set_ylabel("test accuracy")
        lo = min(min(c["accuracy"]["mean"]) for c in r["curves"].values())
        ax.set_ylim(max(0.0, lo - 0.05), 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a small run: 16 BCCD images, 300 digits, 2 seeds")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--datasets", default="digits,bccd")
    ap.add_argument("--detection", action="store_true", help="also the BCCD detection rounds (expensive)")
    ap.add_argument("--det-seeds", type=int, default=2, help="detection: seeds")
    ap.add_argument("--det-rounds", type=int, default=4, help="detection: rounds after the first training")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here instead of benchmarks/results")
    ap.add_argument("--keep", type=Path, default=None, help="keep the BCCD project (and its embeddings) in this "
                    "folder and reuse it on the next run")
    args = ap.parse_args()
    seeds = 2 if args.smoke else args.seeds
    plan = {"digits": {"start": 10, "batch": 10, "budget": 60 if args.smoke else 500},
            "bccd": {"start": 10, "batch": 10, "budget": 50 if args.smoke else 600}}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vl-active-") as tmp:
        for name in filter(None, args.datasets.split(",")):
            data = digits_data(300 if args.smoke else None) if name == "digits" else \
                bccd_data(args.keep or Path(tmp) / name, 16 if args.smoke else None)
            results[name] = run_dataset(data, seeds=seeds, **plan[name])
            m = results[name]["metrics"]["accuracy"]
            print(f"{name}: full {m['full_data']:.4f}, labels to {TARGET:.0%}: {m['labels_to_target']}, ratio to "
                  f"random {m['ratio_to_random']}", file=sys.stderr)
        detection = None
        if args.detection:
            small = {"images": 16, "seeds": 1, "start": 4, "batch": 2, "rounds": 1, "epochs": 1, "size": 224,
                     "val_images": 2}
            full = {"images": None, "seeds": args.det_seeds, "start": 16, "batch": 16, "rounds": args.det_rounds,
                    "epochs": 3, "size": 320, "val_images": 8}
            detection = run_detection(Path(tmp) / "detection", **(small if args.smoke else full))
    stem = "active_learning.smoke" if args.smoke else "active_learning"
    png = (args.out.with_suffix(".png") if args.out else RESULTS / f"{stem}.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(results, png, detection)
    out = {"goal": {"target_share_of_full_data": TARGET, "max_ratio_to_random": GOAL_RATIO},
           "datasets": results, "detection": detection or "not run (pass --detection)", "plot": png.name}
    if args.out is not None:
        import json

        args.out.write_text(json.dumps({"benchmark": "active_learning", "smoke": args.smoke, **out}, indent=2))
        path = args.out
    else:
        path = write_result("active_learning", out, smoke=args.smoke)
    print(f"-> {path}, {png}")


if __name__ == "__main__":
    main()
