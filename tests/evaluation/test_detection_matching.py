"""Detection confusion with background, per-image TP/FP/FN, likely-unlabelled detections, image-level Jaccard."""

import numpy as np
import pytest

from visionloop.core.annotations import Boxes
from visionloop.evaluation.detection import confusion_and_matches, image_jaccard, likely_unlabelled

GT = Boxes(np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float), np.array([1, 1, 2]))
PRED = Boxes(np.array([[0, 0, 10, 11],      # TP on gt 0 (class 1)
                       [20, 20, 30, 30],    # right place, class 2 on a class-1 object: confused
                       [70, 70, 80, 80],    # nowhere near any object: FP, confident -> likely unlabelled
                       [41, 41, 50, 50],    # below its class threshold: dropped, so gt 2 is missed
                       [5, 0, 15, 10]],     # half on gt 0, which is taken: FP that touches a labelled object
                      float), np.array([1, 2, 1, 2, 1]), np.array([0.95, 0.9, 0.97, 0.3, 0.92]))


def test_confusion_matrix_rows_ground_truth_columns_prediction_background_last() -> None:
    cm, [m] = confusion_and_matches([GT], [PRED], [1, 2], {1: 0.5, 2: 0.5})
    assert m["tp"] == [(0, 0)] and m["confused"] == [(1, 1)]
    assert sorted(m["fp"]) == [2, 4] and m["fn"] == [2]
    assert cm.tolist() == [[1, 1, 0],   # class 1: one found, one called class 2
                           [0, 0, 1],   # class 2: missed
                           [2, 0, 0]]   # background: two class-1 false positives
    cm_low, [m_low] = confusion_and_matches([GT], [PRED], [1, 2], {1: 0.5, 2: 0.2})
    assert m_low["fn"] == [] and cm_low[1, 1] == 1  # the low-score box counts once its threshold allows it


def test_likely_unlabelled_keeps_confident_detections_that_touch_no_object() -> None:
    _, [m] = confusion_and_matches([GT], [PRED], [1, 2], {1: 0.5, 2: 0.5})
    assert likely_unlabelled(GT, PRED, m["fp"]) == [2]
    assert likely_unlabelled(GT, PRED, m["fp"], min_score=0.99) == []
    empty = Boxes(np.zeros((0, 4)), np.zeros(0, int))
    assert likely_unlabelled(empty, PRED, [2, 4]) == [2, 4]  # nothing labelled: every confident FP is suspect


def test_image_jaccard_is_the_fraction_of_images_over_the_threshold() -> None:
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[:4] = True  # IoU 0.8 with a
    c = np.zeros((10, 10), bool)
    c[5:] = True  # IoU 0 with a
    out = image_jaccard([a, a, a], [b, c, a])
    assert out["per_image"] == pytest.approx([0.8, 0.0, 1.0])
    assert out["score"] == pytest.approx(2 / 3) and out["mean_iou"] == pytest.approx(0.6)
