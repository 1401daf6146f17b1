from __future__ import annotations

import numpy as np
import pytest

from visionloop.evaluation import (
    choose_thresholds,
    classification_metrics,
    expected_calibration_error,
    tagging_metrics,
    threshold_for,
    top_k_accuracy,
)


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    probs = np.full((8, 3), 0.1)
    pred = [0, 0, 0, 1, 1, 1, 2, 0]
    for i, k in enumerate(pred):
        probs[i, k] = 0.8
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    assert m["per_class"]["a"]["precision"] == pytest.approx(3 / 4)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["support"] == 2
    assert m["confusion_matrix"] == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["top5"] == 1.0
    assert set(m["pr_curves"]) == {"a", "b", "c"} and m["pr_curves"]["a"]["recall"]
    assert 0 <= m["ece"] <= 1


def test_top_k():
    y = np.array([1, 0])
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    assert top_k_accuracy(y, probs, 1) == 0.0
    assert top_k_accuracy(y, probs, 2) == 0.5
    assert top_k_accuracy(y, probs, 3) == 1.0


def test_ece_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1, 200000)
    correct = rng.uniform(0, 1, conf.size) < conf
    assert expected_calibration_error(conf, correct) < 0.01
    assert expected_calibration_error(np.full(100, 0.99), np.zeros(100, bool)) == pytest.approx(0.99)


def test_thresholds_modes():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9])
    t = threshold_for(y, s, mode="f1")
    pred = s >= t
    assert (pred & (y == 1)).sum() == 4  # best F1 keeps every positive here (F1 = 0.89)
    tp = threshold_for(y, s, mode="precision", target=1.0)
    assert tp == pytest.approx(0.6)  # lowest threshold with no false positive
    tr = threshold_for(y, s, mode="recall", target=0.75)
    assert tr == pytest.approx(0.6)  # highest threshold keeping 3 of 4 positives
    assert threshold_for(np.zeros(4), s[:4]) == 0.5
    ys = np.stack([y, 1 - y], 1)
    assert len(choose_thresholds(ys, np.stack([s, 1 - s], 1))) == 2
    with pytest.raises(ValueError):
        threshold_for(y, s, mode="precision")


def test_tagging_metrics():
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.1, 0.4]])
    m = tagging_metrics(y, s, ["x", "y"], thresholds=[0.5, 0.5])
    assert m["mAP"] == pytest.approx(1.0)
    assert m["accuracy"] == 1.0 and m["micro_f1"] == 1.0
    m2 = tagging_metrics(y, s, ["x", "y"], thresholds=[0.5, 0.65])
    assert m2["per_class"]["y"]["recall"] == 0.5 and m2["accuracy"] == 0.75
    assert m2["per_class"]["y"]["threshold"] == 0.65
