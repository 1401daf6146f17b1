"""Confident learning on small matrices checked by hand, and properties that hold for any input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from visionloop.core.errors import AnnotationValidationError
from visionloop.quality.confident_learning import (
    IssueMethod,
    calibrate_joint,
    class_thresholds,
    compute_confident_joint,
    find_label_issues,
    find_tag_issues,
    label_quality,
    normalized_margin,
    rank_issues,
    self_confidence,
)

# Six examples, two classes. Example 2 is labelled 0 but the model is sure of 1; example 5 is labelled 1 and the
# model leans to 0, but not past class 0's threshold.
LABELS = np.array([0, 0, 0, 1, 1, 1])
PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4]])


def test_thresholds_are_mean_self_confidence_per_given_class() -> None:
    # t0 = (0.9 + 0.8 + 0.2) / 3, t1 = (0.9 + 0.7 + 0.4) / 3
    np.testing.assert_allclose(class_thresholds(LABELS, PROBS), [1.9 / 3, 2.0 / 3])


def test_confident_joint_by_hand() -> None:
    cj = compute_confident_joint(LABELS, PROBS)
    # ex0, ex1 confidently 0; ex2 confidently 1 (0.8 >= 2/3, 0.2 < 0.633); ex3, ex4 confidently 1; ex5 above none
    np.testing.assert_array_equal(cj.confident_label, [0, 0, 1, 1, 1, -1])
    np.testing.assert_array_equal(cj.counts, [[2, 1], [0, 2]])
    # row 0 holds 3 examples already; row 1 (2 counted) is scaled to its 3 labelled examples
    np.testing.assert_allclose(cj.calibrated, [[2.0, 1.0], [0.0, 3.0]])
    np.testing.assert_allclose(cj.joint, np.array([[2.0, 1.0], [0.0, 3.0]]) / 6)
    # P(given 0 | true 1) = 1 / 4
    np.testing.assert_allclose(cj.noise_matrix, [[1.0, 0.25], [0.0, 0.75]])


def test_an_example_above_no_threshold_is_not_counted() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.5, 0.1, 0.4], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.6, 0.2],
                      [0.45, 0.05, 0.5], [0.1, 0.1, 0.8]])
    # t = [0.6, 0.7, 0.65]; example 0 is above none (0.5 < 0.6, 0.4 < 0.65); example 4 above none either;
    # example 1 -> 0, 2 -> 1, 3 -> none (0.6 < 0.7), 5 -> 2
    cj = compute_confident_joint(labels, probs)
    np.testing.assert_allclose(cj.thresholds, [0.6, 0.7, 0.65])
    np.testing.assert_array_equal(cj.confident_label, [-1, 0, 1, -1, -1, 2])


def test_multiple_thresholds_pick_the_argmax() -> None:
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.5, 0.5], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    # t0 = 0.4, t1 = 0.5; example 0: both (0.5 >= 0.4, 0.5 >= 0.5): tie -> 0; example 1: 0.3 < 0.4, 0.7 -> 1;
    # example 2: 0.4 >= 0.4 and 0.6 >= 0.5 -> argmax 1; example 3: 0.6 >= 0.4, 0.4 < 0.5 -> 0
    cj = compute_confident_joint(labels, probs)
    np.testing.assert_array_equal(cj.confident_label, [0, 1, 1, 0])
    np.testing.assert_array_equal(cj.counts, [[1, 1], [1, 1]])


def test_calibration_scales_rows_and_keeps_unconfident_rows_on_the_diagonal() -> None:
    out = calibrate_joint([[1, 1, 0], [0, 0, 0], [0, 3, 1]], [4, 5, 8])
    np.testing.assert_allclose(out, [[2, 2, 0], [0, 5, 0], [0, 6, 2]])
    assert out.sum() == 17


@pytest.mark.parametrize("method", ["both", "prune_by_noise_rate", "prune_by_class", "confident_joint"])
def test_issue_sets_by_hand(method: str) -> None:
    np.testing.assert_array_equal(find_label_issues(LABELS, PROBS, method),
                                  [False, False, True, False, False, False])


def test_confusion_also_flags_an_unconfident_disagreement() -> None:
    np.testing.assert_array_equal(find_label_issues(LABELS, PROBS, "confusion"),
                                  [False, False, True, False, False, True])


def test_prune_by_noise_rate_takes_the_largest_margins() -> None:
    # five labelled 0: two look like 1 past its threshold (2, 3), one leans to 1 below it (4)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.1, 0.9], [0.05, 0.95], [0.3, 0.7],
                      [0.1, 0.9], [0.15, 0.85], [0.3, 0.7]])
    cj = compute_confident_joint(labels, probs)
    # t0 = (0.95 + 0.9 + 0.1 + 0.05 + 0.3) / 5 = 0.46, t1 = (0.9 + 0.85 + 0.7) / 3
    np.testing.assert_allclose(cj.thresholds, [0.46, 2.45 / 3])
    np.testing.assert_array_equal(cj.counts, [[2, 2], [0, 2]])
    np.testing.assert_allclose(cj.calibrated, [[2.5, 2.5], [0.0, 3.0]])
    # rint(2.5) = 2 (round half to even): the two largest margins p1 - p0 are examples 3 (0.9) and 2 (0.8)
    np.testing.assert_array_equal(np.flatnonzero(find_label_issues(labels, probs, "prune_by_noise_rate")), [2, 3])
    # PBC: rint(2.5) = 2 lowest self-confidences among label 0: examples 3 (0.05) and 2 (0.1)
    np.testing.assert_array_equal(np.flatnonzero(find_label_issues(labels, probs, "prune_by_class")), [2, 3])
    # example 4 (0.7 < t1) is not confidently 1: not in the confident-joint set either
    np.testing.assert_array_equal(np.flatnonzero(find_label_issues(labels, probs, "confident_joint")), [2, 3])


def test_scores_and_ranking() -> None:
    np.testing.assert_allclose(self_confidence(LABELS, PROBS), [0.9, 0.8, 0.2, 0.9, 0.7, 0.4])
    np.testing.assert_allclose(normalized_margin(LABELS, PROBS), [0.9, 0.8, 0.2, 0.9, 0.7, 0.4])
    three = np.array([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(normalized_margin([1], three), [(0.3 - 0.5 + 1) / 2])
    np.testing.assert_allclose(label_quality([0], three, "normalized_margin"), [(0.5 - 0.3 + 1) / 2])
    np.testing.assert_array_equal(rank_issues(LABELS, PROBS), [2, 5, 4, 1, 0, 3])
    np.testing.assert_array_equal(rank_issues(LABELS, PROBS, issues=[0, 1, 1, 0, 0, 1]), [2, 5, 1])


def test_tagging_one_vs_rest() -> None:
    # tag 0: image 3 lacks it although the model is sure; tag 1: image 0 has it although the model is sure it is not
    tags = np.array([[1, 1], [1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [1, 1], [0, 1]])
    probs = np.array([[0.9, 0.05], [0.8, 0.1], [0.85, 0.2], [0.95, 0.9], [0.1, 0.8],
                      [0.2, 0.1], [0.9, 0.9], [0.1, 0.85]])
    found = find_tag_issues(tags, probs)
    assert found.ranked() == [(0, 1), (3, 0)]
    np.testing.assert_allclose(found.quality[0, 1], 0.05)
    np.testing.assert_allclose(found.quality[3, 0], 0.05)


def test_a_tag_every_image_has_is_not_checked() -> None:
    found = find_tag_issues(np.ones((3, 1)), np.array([[0.9], [0.1], [0.8]]))
    assert not found.issues.any()
    np.testing.assert_allclose(found.quality[:, 0], [0.9, 0.1, 0.8])


@pytest.mark.parametrize(("labels", "probs", "match"), [
    ([0, 1], [[0.5, 0.5]], "one label per row"),
    ([0, 2], [[0.5, 0.5], [0.5, 0.5]], "integers in 0..1"),
    ([0, 1], [[0.5, 0.6], [0.5, 0.5]], "sum to 1"),
    ([0, 1], [[1.5, -0.5], [0.5, 0.5]], "0..1"),
    ([0], [[1.0]], "m >= 2"),
    ([0.0, 1.0], [[0.5, 0.5], [0.5, 0.5]], "integers"),
])
def test_bad_input_is_refused_with_what_was_expected(labels: list, probs: list, match: str) -> None:
    with pytest.raises(AnnotationValidationError, match=match):
        find_label_issues(np.array(labels), np.array(probs))


# ---- properties ----------------------------------------------------------------------------------------------------

@st.composite
def noisy_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    m = draw(st.integers(2, 5))
    n = draw(st.integers(1, 40))
    raw = draw(arrays(np.float64, (n, m), elements=st.floats(0.01, 1.0)))
    probs = raw / raw.sum(axis=1, keepdims=True)
    labels = draw(arrays(np.int64, (n,), elements=st.integers(0, m - 1)))
    return labels, probs


@settings(max_examples=150, deadline=None)
@given(noisy_problems())
def test_calibrated_joint_keeps_the_label_counts(problem: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = problem
    cj = compute_confident_joint(labels, probs)
    m = probs.shape[1]
    np.testing.assert_allclose(cj.calibrated.sum(axis=1), np.bincount(labels, minlength=m))
    assert cj.counts.sum() == (cj.confident_label >= 0).sum()
    if len(labels):
        assert cj.joint.sum() == pytest.approx(1.0)


@settings(max_examples=150, deadline=None)
@given(noisy_problems())
def test_both_is_the_intersection_and_sets_stay_within_bounds(problem: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = problem
    both = find_label_issues(labels, probs, "both")
    pbnr = find_label_issues(labels, probs, "prune_by_noise_rate")
    cj_set = find_label_issues(labels, probs, "confident_joint")
    np.testing.assert_array_equal(both, pbnr & cj_set)
    cj = compute_confident_joint(labels, probs)
    off = np.rint(cj.calibrated).astype(int)
    np.fill_diagonal(off, 0)
    assert pbnr.sum() <= off.sum()
    # an example the model agrees with confidently is never in the confident-joint set
    agree = (cj.confident_label == labels)
    assert not (cj_set & agree).any()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(2, 5))
def test_result_follows_a_permutation_of_examples_and_classes(seed: int, n: int, m: int) -> None:
    # continuous random probabilities: ties (within a row, or at a threshold, whose last bit depends on the order
    # of the sum) are decided by order, and have probability zero here
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(m), size=n)
    labels = rng.integers(0, m, size=n)
    assume(np.abs(probs - class_thresholds(labels, probs)[None, :]).min() > 1e-9 or n == 1)
    rows = rng.permutation(n)
    cols = rng.permutation(m)  # new class c' = position of old class in cols
    inverse = np.argsort(cols)
    labels2 = inverse[labels[rows]]
    probs2 = probs[rows][:, cols]
    for method in (IssueMethod.CONFIDENT_JOINT, IssueMethod.CONFUSION):
        np.testing.assert_array_equal(find_label_issues(labels2, probs2, method),
                                      find_label_issues(labels, probs, method)[rows])


@settings(max_examples=100, deadline=None)
@given(noisy_problems())
def test_a_model_that_agrees_with_every_label_finds_nothing(problem: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = problem
    m = probs.shape[1]
    agreeing = np.full((len(labels), m), 0.1 / (m - 1))
    agreeing[np.arange(len(labels)), labels] = 0.9
    for method in IssueMethod:
        assert not find_label_issues(labels, agreeing, method).any()


@settings(max_examples=100, deadline=None)
@given(noisy_problems())
def test_scores_are_in_unit_range_and_ranking_is_a_permutation(problem: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = problem
    for score in ("self_confidence", "normalized_margin"):
        q = label_quality(labels, probs, score)
        assert ((q >= 0) & (q <= 1)).all()
        order = rank_issues(labels, probs, score=score)
        assert sorted(order.tolist()) == list(range(len(labels)))
        assert (np.diff(q[order]) >= 0).all()
