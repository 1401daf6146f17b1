"""Paired bootstrap of challenger minus champion: each metric over a resample equals the metric computed directly on
the resampled images (scikit-learn, pycocotools, our mIoU), and the interval excludes zero only for a real gain."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from tests.evaluation.test_coco_eval import _bccd, _noisy_predictions
from visionloop.active.bootstrap import (
    classification_scorer,
    detection_scorer,
    paired_bootstrap,
    resample_counts,
    semantic_scorer,
)
from visionloop.core.annotations import Boxes
from visionloop.core.errors import AnnotationValidationError
from visionloop.evaluation.coco_eval import coco_evaluate, to_coco_json
from visionloop.evaluation.detection import semantic_scores


def _predict(y: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    wrong = rng.random(len(y)) > accuracy
    return np.where(wrong, (y + rng.integers(1, 3, len(y))) % 3, y)


def _indexes(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)  # sorted: copies of an image next to each other


def test_resample_counts_are_seeded_draws_with_replacement():
    a, b = resample_counts(50, 20, seed=3), resample_counts(50, 20, seed=3)
    assert (a == b).all() and (a.sum(axis=1) == 50).all()
    assert (a != resample_counts(50, 20, seed=4)).any()
    assert (a == 0).any() and (a >= 2).any()


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "macro_f1"])
def test_classification_resample_equals_scikit_learn_on_the_drawn_images(metric):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    p = _predict(y, 0.8, rng)
    scorer = classification_scorer(y, p, metric=metric)
    direct = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
              "macro_f1": lambda a, b: f1_score(a, b, average="macro")}[metric]
    assert scorer.full() == pytest.approx(direct(y, p), abs=1e-12)
    for counts in resample_counts(len(y), 5, seed=1):
        idx = _indexes(counts)
        assert scorer.score(counts) == pytest.approx(direct(y[idx], p[idx]), abs=1e-12)


def test_classification_ci_excludes_zero_for_a_clear_gain_and_includes_it_for_none():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    champion, better, same = _predict(y, 0.75, rng), _predict(y, 0.92, rng), _predict(y, 0.75, rng)
    gain = paired_bootstrap(classification_scorer(y, champion), classification_scorer(y, better), seed=0)
    assert gain.ci_low > 0.05 and gain.ci_low < gain.difference < gain.ci_high
    assert gain.difference == pytest.approx(accuracy_score(y, better) - accuracy_score(y, champion))
    pair = classification_scorer(y, champion), classification_scorer(y, same)
    none = paired_bootstrap(*pair, seed=0, resamples=400)
    assert none.ci_low < 0 < none.ci_high
    again = paired_bootstrap(*pair, seed=0, resamples=400)
    assert again == none and again.resamples == 400 and again.images == 400
    assert paired_bootstrap(*pair, seed=5, resamples=400) != none
    narrow = paired_bootstrap(classification_scorer(y, champion), classification_scorer(y, better), confidence=0.5)
    assert gain.ci_low < narrow.ci_low < narrow.ci_high < gain.ci_high


def test_detection_map_per_resample_equals_pycocotools_on_the_resampled_images(bccd_dir):
    gts, sizes = _bccd(bccd_dir, 40)
    preds = _noisy_predictions(gts, sizes, seed=0)
    labels = [1, 2, 3]
    for metric, key in (("map", "map"), ("map50", "map50")):
        scorer = detection_scorer(gts, preds, sizes=sizes, labels=labels, metric=metric)
        gt_json, res = to_coco_json(gts, preds, sizes=sizes, labels=labels)
        assert scorer.full() == pytest.approx(coco_evaluate(gt_json, res).stats[key], abs=1e-12)
        for counts in resample_counts(len(gts), 4, seed=7):
            idx = _indexes(counts)
            gt_json, res = to_coco_json([gts[i] for i in idx], [preds[i] for i in idx], sizes=[sizes[i] for i in idx],
                                        labels=labels)
            assert scorer.score(counts) == pytest.approx(coco_evaluate(gt_json, res).stats[key], abs=1e-12)


def test_detection_ci_on_bccd(bccd_dir):
    gts, sizes = _bccd(bccd_dir, 60)
    labels = [1, 2, 3]
    champion = _noisy_predictions(gts, sizes, seed=1)
    twin = _noisy_predictions(gts, sizes, seed=2)  # as good, other mistakes
    exact = [Boxes(g.xyxy, g.class_id, np.linspace(0.99, 0.9, len(g))) for g in gts]
    score = lambda p: detection_scorer(gts, p, sizes=sizes, labels=labels)  # noqa: E731
    gain = paired_bootstrap(score(champion), score(exact), resamples=300)
    assert gain.challenger == pytest.approx(1.0) and gain.ci_low > 0.2
    none = paired_bootstrap(score(champion), score(twin), resamples=300)
    assert none.ci_low < 0 < none.ci_high


def test_semantic_miou_per_resample_equals_the_summed_confusion():
    rng = np.random.default_rng(2)
    targets = [rng.integers(0, 3, (16, 20)) for _ in range(12)]
    targets[0][:4] = 255  # ignored pixels
    preds = [np.where(rng.random(t.shape) < 0.8, t % 255, rng.integers(0, 3, t.shape)) for t in targets]
    scorer = semantic_scorer(targets, preds, num_classes=3)
    assert scorer.full() == pytest.approx(semantic_scores(targets, preds, num_classes=3)["miou"], abs=1e-12)
    for counts in resample_counts(12, 5, seed=0):
        idx = _indexes(counts)
        direct = semantic_scores([targets[i] for i in idx], [preds[i] for i in idx], num_classes=3)["miou"]
        assert scorer.score(counts) == pytest.approx(direct, abs=1e-12)
    better = [np.where(t == 255, 0, t) for t in targets]
    gain = paired_bootstrap(scorer, semantic_scorer(targets, better, num_classes=3), resamples=200)
    assert gain.challenger == pytest.approx(1.0) and gain.ci_low > 0


def test_bad_input_is_refused_with_what_to_do():
    y = np.array([0, 1, 2])
    with pytest.raises(AnnotationValidationError, match="accuracy"):
        classification_scorer(y, y, metric="top5")
    with pytest.raises(AnnotationValidationError, match="same metric"):
        paired_bootstrap(classification_scorer(y, y), classification_scorer(y[:2], y[:2]))
    empty = classification_scorer(y[:0], y[:0])
    with pytest.raises(AnnotationValidationError, match="test split is empty"):
        paired_bootstrap(empty, empty)
