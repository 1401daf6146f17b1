"""Acquisition functions on small arrays whose order is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.active.acquisition import (
    aggregate_boxes,
    binary_entropy,
    box_uncertainty,
    classification_scores,
    detection_uncertainty,
    entropy,
    least_confidence,
    margin,
    tag_entropy,
)
from visionloop.core.errors import AnnotationValidationError

PROBS = np.array([
    [1.0, 0.0, 0.0],     # sure
    [0.5, 0.5, 0.0],     # torn between two
    [1 / 3, 1 / 3, 1 / 3],  # no idea
    [0.6, 0.2, 0.2],
])


def test_uniform_rows_score_one_and_sure_rows_zero() -> None:
    for fn in (entropy, margin, least_confidence):
        s = fn(PROBS)
        assert s[0] == pytest.approx(0.0, abs=1e-9) and s[2] == pytest.approx(1.0), fn.__name__
        assert ((s >= 0) & (s <= 1)).all()


def test_margin_ranks_a_two_way_tie_first_where_entropy_ranks_spread_doubt_first() -> None:
    # margin: [0.5, 0.5, 0] has no margin at all (1.0), as high as uniform; entropy puts [0.6, 0.2, 0.2] above it
    assert margin(PROBS)[1] == pytest.approx(1.0)
    assert entropy(PROBS)[1] == pytest.approx(np.log(2) / np.log(3))
    assert list(np.argsort(-entropy(PROBS), kind="stable")) == [2, 3, 1, 0]
    assert list(np.argsort(-margin(PROBS), kind="stable")) == [1, 2, 3, 0]
    assert least_confidence(PROBS)[1] == pytest.approx(0.75)  # (1 - 0.5) * 3 / 2
    assert least_confidence(PROBS)[3] == pytest.approx(0.6)
    assert margin(PROBS)[3] == pytest.approx(0.6)


def test_classification_scores_by_name_and_bad_input() -> None:
    assert np.allclose(classification_scores(PROBS, "margin"), margin(PROBS))
    with pytest.raises(AnnotationValidationError, match="entropy | margin"):
        classification_scores(PROBS, "bald")
    with pytest.raises(AnnotationValidationError, match="2-D"):
        entropy(np.array([0.5, 0.5]))
    with pytest.raises(AnnotationValidationError, match="0..1"):
        margin(np.array([[0.5, np.nan]]))


def test_tagging_averages_the_binary_entropy_of_each_tag() -> None:
    tags = np.array([[0.0, 1.0, 1.0, 0.0], [0.5, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    assert np.allclose(tag_entropy(tags), [0.0, 0.25, 1.0])


def test_box_uncertainty_both_kinds_peak_at_one_half() -> None:
    s = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    assert np.allclose(box_uncertainty(s, kind="distance"), [0.0, 0.2, 1.0, 0.2, 0.0])
    e = box_uncertainty(s)
    assert np.allclose(e, binary_entropy(s)) and e[2] == pytest.approx(1.0) and e[1] == pytest.approx(e[3])
    with pytest.raises(AnnotationValidationError):
        box_uncertainty(s, kind="variance")


def test_aggregates_and_images_without_boxes() -> None:
    v = np.array([0.1, 0.9, 0.5, 0.7])
    assert aggregate_boxes(v, how="max") == pytest.approx(0.9)
    assert aggregate_boxes(v, how="mean") == pytest.approx(0.55)
    assert aggregate_boxes(v, how="sum") == pytest.approx(2.2)
    assert aggregate_boxes(v) == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert aggregate_boxes(v[:1]) == pytest.approx(0.1)  # fewer than k: the mean of those there are
    assert aggregate_boxes(np.zeros(0), empty=0.25) == 0.25
    with pytest.raises(AnnotationValidationError, match="topk_mean"):
        aggregate_boxes(v, how="median")


def test_detection_ranks_an_image_of_doubtful_boxes_above_one_of_sure_boxes() -> None:
    sure = np.array([0.99, 0.98, 0.97, 0.96, 0.5])  # many sure boxes and one doubtful
    doubtful = np.array([0.55, 0.45, 0.6])
    speck = np.array([0.06])  # one box at the low floor: the model is fairly sure it is nothing
    s = detection_uncertainty([sure, doubtful, speck, np.zeros(0)])
    assert s[1] > s[0] > s[2]
    assert s[3] == pytest.approx(0.5)
    # the plain max cannot tell the first two apart
    m = detection_uncertainty([sure, doubtful], how="max")
    assert m[0] == pytest.approx(1.0) and m[1] == pytest.approx(1.0, abs=0.05)
