"""Drift statistics: MMD permutation test, two-sample tests, PSI, image statistics (seeded, deterministic)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from tests.conftest import make_image_bytes
from visionloop.active.drift import (
    DriftThresholds,
    class_counts_test,
    compare_values,
    histogram,
    image_stats,
    median_bandwidth,
    mmd2_unbiased,
    mmd_test,
    prediction_summary,
    psi,
    two_sample_test,
)
from visionloop.core.errors import ImageError


def _normal(seed: int, n: int = 200, d: int = 16, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_mmd_same_distribution_has_a_high_p() -> None:
    r = mmd_test(_normal(1), _normal(2), permutations=300, seed=0)
    assert r.p > 0.2 and abs(r.mmd) < 0.01
    assert (r.n_x, r.n_y, r.permutations) == (200, 200, 300)


def test_mmd_shifted_distribution_has_a_low_p() -> None:
    r = mmd_test(_normal(1), _normal(2, shift=0.5), permutations=300, seed=0)
    assert r.p == pytest.approx(1 / 301) and r.mmd > 0.01


def test_mmd_is_deterministic_for_a_seed_and_subsamples_large_sets() -> None:
    x, y = _normal(3, n=900), _normal(4, n=700, shift=0.1)
    a = mmd_test(x, y, permutations=50, max_samples=120, seed=7)
    b = mmd_test(x, y, permutations=50, max_samples=120, seed=7)
    assert a == b and (a.n_x, a.n_y) == (120, 120)
    assert mmd_test(x, y, permutations=50, max_samples=120, seed=8) != a


def test_mmd_unbiased_estimate_matches_the_definition() -> None:
    x, y = _normal(5, n=6, d=3), _normal(6, n=5, d=3, shift=1.0)
    sigma = 1.7

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma * sigma))

    xx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(a, b) for a in x for b in y) / 30
    assert mmd2_unbiased(x, y, bandwidth=sigma) == pytest.approx(xx + yy - 2 * xy, rel=1e-9)


def test_median_bandwidth() -> None:
    pts = np.asarray([[0.0], [3.0], [4.0]])
    d = (pts - pts.T) ** 2
    assert median_bandwidth(d) == pytest.approx(3.0)  # distances 3, 4, 1 (twice each): median 3
    assert median_bandwidth(np.zeros((3, 3))) == 1.0  # all points the same


def test_mmd_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="same D"):
        mmd_test(_normal(1, d=4), _normal(2, d=5))
    with pytest.raises(ValueError, match="N >= 2"):
        mmd_test(_normal(1, n=1), _normal(2))
    with pytest.raises(ValueError, match="permutations"):
        mmd_test(_normal(1), _normal(2), permutations=0)


def test_psi_known_values() -> None:
    assert psi([50, 50], [50, 50]) == 0.0
    # (0.4 - 0.5) ln(0.4/0.5) + (0.6 - 0.5) ln(0.6/0.5)
    assert psi([50, 50], [40, 60]) == pytest.approx(0.1 * math.log(1.25) + 0.1 * math.log(1.2))
    # an empty bin counts as the floor 1e-4 instead of making the index infinite
    expected = (0.5 - 1e-4) * math.log(0.5 / 1e-4) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert psi([10, 0], [5, 5]) == pytest.approx(expected)
    assert psi([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)  # proportions, not counts
    # floor=None: an empty bin counts as half of one count of its own histogram (here 0.5 / 10)
    expected = (0.5 - 0.05) * math.log(0.5 / 0.05) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert psi([10, 0], [5, 5], floor=None) == pytest.approx(expected)
    with pytest.raises(ValueError, match="same bins"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        psi([0, 0], [1, 2])


def test_two_sample_tests_on_confidences() -> None:
    rng = np.random.default_rng(0)
    ref = rng.beta(8, 2, 300)
    same, lower = rng.beta(8, 2, 150), rng.beta(4, 3, 150)
    for method in ("ks", "ad"):
        assert two_sample_test(ref, same, method=method).p > 0.05
        assert two_sample_test(ref, lower, method=method).p < 0.01
    assert two_sample_test(ref, lower).stat > two_sample_test(ref, same).stat
    with pytest.raises(ValueError, match="'ks' or 'ad'"):
        two_sample_test(ref, same, method="t")


def test_class_counts_test() -> None:
    assert class_counts_test([100, 50, 25], [40, 20, 10]).p > 0.9
    assert class_counts_test([100, 50, 25], [10, 20, 60]).p < 1e-6
    assert class_counts_test([5, 0], [3, 0]).p == 1.0  # one class seen: nothing to compare


def test_histogram_puts_outliers_in_the_end_bins() -> None:
    edges = np.asarray([0.0, 1.0, 2.0, 3.0])
    assert histogram(np.asarray([-5.0, 0.5, 1.0, 2.5, 9.0]), edges).tolist() == [2, 1, 2]


def test_compare_values_same_and_shifted() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(120, 15, 300)
    same = compare_values(ref, rng.normal(120, 15, 100))
    dark = compare_values(ref, rng.normal(60, 15, 100))
    assert same.p > 0.05 and same.psi < 0.2
    assert dark.p < 1e-6 and dark.psi > 1.0 and dark.production_mean < dark.reference_mean
    assert len(dark.edges) == 21 and sum(dark.reference) == pytest.approx(1.0) and sum(dark.production) == pytest.approx(1.0)


def test_compare_values_with_a_constant_reference() -> None:
    same = compare_values(np.full(60, 554.3), np.full(30, 554.3))
    smaller = compare_values(np.full(60, 554.3), np.random.default_rng(2).normal(377, 40, 30))
    assert same.psi == 0.0 and same.p == 1.0
    assert smaller.psi > 5 and smaller.p < 1e-6


def test_default_thresholds() -> None:
    assert DriftThresholds().to_json() == {"mmd_p": 0.01, "confidence_p": 0.01, "psi": 0.2, "image_psi": 0.2,
                                           "histogram_p": 0.01}


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_image_stats_see_size_brightness_and_blur() -> None:
    im = Image.open(io.BytesIO(make_image_bytes(640, 480, seed=3))).convert("RGB")
    base = image_stats(_jpeg(im))
    assert (base.width, base.height) == (640, 480) and base.size == pytest.approx(math.sqrt(640 * 480))
    dark = image_stats(_jpeg(im.point(lambda v: v // 3)))
    blurred = image_stats(_jpeg(im.filter(ImageFilter.GaussianBlur(4))))
    small = image_stats(_jpeg(im.resize((320, 240))))
    assert dark.brightness < base.brightness / 2.5
    assert blurred.blur < base.blur / 10
    assert small.size == pytest.approx(base.size / 2)
    with pytest.raises(ImageError):
        image_stats(b"not an image")


def test_prediction_summary_per_task() -> None:
    assert prediction_summary({"task": "classification", "label": {"class_id": 2, "name": "b", "score": 0.8},
                               "scores": []}) == (0.8, [2])
    det = {"task": "detection", "detections": [{"class_id": 0, "score": 0.9, "xyxy": [0, 0, 1, 1], "name": "a"},
                                               {"class_id": 1, "score": 0.5, "xyxy": [0, 0, 1, 1], "name": "b"}]}
    assert prediction_summary(det) == (pytest.approx(0.7), [0, 1])
    assert prediction_summary({"task": "detection", "detections": []}) == (None, [])
    tags = {"task": "tagging", "tags": [{"class_id": 1, "score": 0.7, "name": "x"}],
            "scores": [{"class_id": 0, "score": 0.2, "name": "y"}, {"class_id": 1, "score": 0.7, "name": "x"}]}
    assert prediction_summary(tags) == (0.7, [1])
