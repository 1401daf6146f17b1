"""Label-error recall on real data: BCCD cell crops with 5% of their labels flipped at random.

1. BCCD (Pascal VOC, 364 blood-smear images) is imported, versioned and derived into a classification project of box
   crops (``visionloop.quality.derive``: WBC, RBC, Platelets; each box enlarged by 10%).
2. 5% of the crops get another class, drawn uniformly among the others (seeded), saved as new revisions; a version
   freezes the noisy labels.
3. The finder (``visionloop.training.out_of_sample.find_candidates``: cached ImageNet features of the offline
   EfficientNet-Lite0, 5-fold cross-validated logistic regression, confident learning) ranks every crop, likeliest
   label error first, and stores its candidates.

Reported: the share of the flipped crops in the top 10% of the ranking (self-confidence), the same for a random
ranking in the same run (one seeded draw, and the mean of 1,000 draws; 0.10 is expected), precision and recall of the
issue sets of confident learning's methods, and the times. Results: benchmarks/results/label_errors.json
(``--smoke``: the first 12 images, label_errors.smoke.json; ``--images N``: the first N images; ``--out PATH``).

    nice -n 10 python benchmarks/label_errors.py [--smoke]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from common import SHARED, write_result  # noqa: E402

from visionloop.core.annotations import Label  # noqa: E402
from visionloop.ingest import import_source  # noqa: E402
from visionloop.quality.confident_learning import IssueMethod, find_label_issues, rank_issues  # noqa: E402
from visionloop.quality.derive import derive_project  # noqa: E402
from visionloop.storage import Project  # noqa: E402
from visionloop.storage.label_issues import save_label_issue_run  # noqa: E402
from visionloop.storage.versions import create_version  # noqa: E402
from visionloop.training.out_of_sample import examples_of, find_candidates  # noqa: E402

FLIP_FRACTION = 0.05
TOP_FRACTION = 0.10
STORED_METHOD = IssueMethod.PRUNE_BY_NOISE_RATE


def voc_subset(src: Path, out: Path, n: int | None) -> int:
    """The first ``n`` annotated images of a VOC folder (all when None), copied to ``out``."""
    xmls = sorted((src / "Annotations").glob("*.xml"))[:n]
    (out / "Annotations").mkdir(parents=True)
    (out / "JPEGImages").mkdir()
    for x in xmls:
        shutil.copy2(x, out / "Annotations" / x.name)
        shutil.copy2(src / "JPEGImages" / f"{x.stem}.jpg", out / "JPEGImages" / f"{x.stem}.jpg")
    return len(xmls)


def crops_project(work: Path, images: int | None) -> Project:
    n = voc_subset(SHARED / "datasets" / "bccd" / "BCCD", work / "voc", images)
    with Project.create(work / "det", task="detection") as det:
        import_source(det, work / "voc", format="voc")
        create_version(det, name="v1")
        derive_project(det, "v1", to="crops", out=work / "crops")
    print(f"{n} BCCD images -> crops", file=sys.stderr)
    return Project.open(work / "crops")


def flip_labels(project: Project, *, fraction: float, seed: int) -> set[int]:
    """Give ``fraction`` of the labelled images another class (uniform among the others); returns their ids."""
    items, onto = examples_of(project, None)
    classes = [c.id for c in onto.active]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(items), size=int(round(fraction * len(items))), replace=False)
    with project.transaction() as conn:
        for i in sorted(chosen.tolist()):
            it = items[i]
            others = [c for c in classes if c != it.annotation.class_id]
            head, _ = project.head(it.image.id)
            project.save_annotation(it.image.id, Label(int(rng.choice(others))), base_revision=head, author="flip",
                                    conn=conn)
    return {items[i].image.id for i in chosen.tolist()}


def share_in_top(order_ids: list[int], flipped: set[int], top: int) -> float:
    return len(set(order_ids[:top]) & flipped) / max(1, len(flipped))


def run(images: int | None, *, seed: int = 0, folds: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vl-label-errors-") as tmp:
        t0 = time.perf_counter()
        project = crops_project(Path(tmp), images)
        prepare_s = time.perf_counter() - t0
        try:
            flipped = flip_labels(project, fraction=FLIP_FRACTION, seed=seed)
            create_version(project, name="flipped")
            stages: dict[str, float] = {}
            last = [time.perf_counter()]

            def progress(stage: str, done: int, total: int) -> None:
                if done >= total:
                    now = time.perf_counter()
                    stages[stage] = round(stages.get(stage, 0.0) + now - last[0], 2)
                    last[0] = now
                    print(f"{stage}: {total} done", file=sys.stderr)

            t1 = time.perf_counter()
            report = find_candidates(project, version="flipped", folds=folds, seed=seed, method=STORED_METHOD,
                                     progress=progress)
            find_s = time.perf_counter() - t1
            saved = save_label_issue_run(project, report.candidates, created_by="benchmark", method=STORED_METHOD.value,
                                         version="flipped", params={"folds": folds}, summary=report.summary)
        finally:
            project.close()
    oos = report.oos
    ids = np.asarray(oos.image_ids)
    n = len(ids)
    top = int(round(TOP_FRACTION * n))
    truth = np.isin(ids, list(flipped))
    ours = share_in_top(ids[rank_issues(oos.targets, oos.probs)].tolist(), flipped, top)
    ours_margin = share_in_top(ids[rank_issues(oos.targets, oos.probs, score="normalized_margin")].tolist(),
                               flipped, top)
    rng = np.random.default_rng(seed + 1)
    random_once = share_in_top(ids[rng.permutation(n)].tolist(), flipped, top)
    random_mean = float(np.mean([share_in_top(ids[rng.permutation(n)].tolist(), flipped, top)
                                 for _ in range(1000)]))
    sets = {}
    for method in IssueMethod:
        found = find_label_issues(oos.targets, oos.probs, method)
        tp = int((found & truth).sum())
        sets[method.value] = {"flagged": int(found.sum()), "precision": round(tp / max(1, int(found.sum())), 4),
                              "recall": round(tp / max(1, int(truth.sum())), 4)}
    stored = [c.image_id for c in report.candidates]
    return {
        "dataset": f"BCCD crops ({'all' if images is None else f'first {images}'} images)",
        "crops": n, "classes": dict(zip(oos.class_names, np.bincount(oos.targets).tolist(), strict=True)),
        "flipped": len(flipped), "flip_fraction": FLIP_FRACTION, "top_fraction": TOP_FRACTION, "top": top,
        "flipped_in_top": {"ours_self_confidence": round(ours, 4), "ours_normalized_margin": round(ours_margin, 4),
                           "random_ranking": round(random_once, 4), "random_ranking_mean_of_1000": round(random_mean, 4),
                           "ratio_ours_to_random": round(ours / max(random_mean, 1e-9), 2)},
        "issue_sets": sets,
        "stored_candidates": {"run": saved.id, "method": STORED_METHOD.value, "count": len(stored),
                              "flipped_among_them": len(set(stored) & flipped)},
        "folds": folds, "out_of_sample_accuracy": round(float((oos.probs.argmax(1) == oos.targets).mean()), 4),
        "seconds": {"prepare_project": round(prepare_s, 1), "find_candidates": round(find_s, 1), **stages},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="the first 12 images only")
    ap.add_argument("--images", type=int, default=None, help="the first N images (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here instead of benchmarks/results")
    args = ap.parse_args()
    images = 12 if args.smoke and args.images is None else args.images
    result = run(images, seed=args.seed)
    if args.out is not None:
        import json

        args.out.write_text(json.dumps({"benchmark": "label_errors", "smoke": args.smoke, **result}, indent=2))
        path = args.out
    else:
        path = write_result("label_errors", result, smoke=args.smoke)
    f = result["flipped_in_top"]
    print(f"{result['crops']} crops, {result['flipped']} flipped: top {TOP_FRACTION:.0%} holds "
          f"{f['ours_self_confidence']:.1%} of them (random ranking {f['random_ranking_mean_of_1000']:.1%}); "
          f"issue set {STORED_METHOD.value} P={result['issue_sets'][STORED_METHOD.value]['precision']:.2f} "
          f"R={result['issue_sets'][STORED_METHOD.value]['recall']:.2f} -> {path}")


if __name__ == "__main__":
    main()
