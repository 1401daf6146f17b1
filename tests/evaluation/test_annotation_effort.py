"""The simulated annotator's counting (pre-annotation benchmark) on a hand-made image."""

from __future__ import annotations

import numpy as np

from visionloop.evaluation.annotation_effort import effort_with_suggestions, effort_without_suggestions, match_boxes

# Ground truth: four objects, classes 0 (the one kept selected), 0, 1, 2.
GT = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], dtype=float)
GT_CLS = np.array([0, 0, 1, 2])
# Suggestions: an exact box, a loose box of the right class (IoU 100/144 = 0.69), an exact box of the wrong class,
# a false positive far away; object 3 is missed. A fifth suggestion scores below every threshold used here.
PRED = np.array([[0, 0, 10, 10], [20, 0, 32, 12], [40, 0, 50, 10], [100, 100, 110, 110], [60, 0, 70, 10]],
                dtype=float)
PRED_CLS = np.array([0, 0, 0, 1, 2])
SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.05])


def test_without_suggestions_every_object_is_drawn_and_its_class_picked_unless_default() -> None:
    e = effort_without_suggestions(GT_CLS, default_class=0)
    assert (e.draws, e.class_picks, e.total) == (4, 2, 6)


def test_with_suggestions_each_fix_is_counted_once() -> None:
    e = effort_with_suggestions(PRED, PRED_CLS, SCORE, GT, GT_CLS, threshold=0.5, default_class=0)
    assert e.to_json() == {"accept_all": 1, "draws": 1, "class_picks": 1, "deletes": 1, "adjusts": 1,
                           "class_changes": 1, "total": 6}
    # Above 0.75 only the exact and the loose box are accepted: objects 2 and 3 are drawn (both not default class).
    e = effort_with_suggestions(PRED, PRED_CLS, SCORE, GT, GT_CLS, threshold=0.75, default_class=0)
    assert e.to_json() == {"accept_all": 1, "draws": 2, "class_picks": 2, "deletes": 0, "adjusts": 1,
                           "class_changes": 0, "total": 6}
    # Down to 0.05 the missed object is suggested too: nothing is drawn.
    e = effort_with_suggestions(PRED, PRED_CLS, SCORE, GT, GT_CLS, threshold=0.05, default_class=0)
    assert (e.draws, e.deletes, e.total) == (0, 1, 4)
    # Nothing above the threshold: no accept, the same as drawing everything.
    e = effort_with_suggestions(PRED, PRED_CLS, SCORE, GT, GT_CLS, threshold=0.95, default_class=0)
    assert e == effort_without_suggestions(GT_CLS, default_class=0)


def test_matching_is_one_to_one_and_prefers_the_better_overlap() -> None:
    gt = np.array([[0, 0, 10, 10]], dtype=float)
    two = np.array([[0, 0, 10, 12], [0, 0, 10, 10]], dtype=float)  # both overlap; the exact one is kept
    assert match_boxes(two, gt) == [(1, 0, 1.0)]
    e = effort_with_suggestions(two, np.array([0, 0]), np.array([0.9, 0.9]), gt, np.array([0]), threshold=0.5,
                                default_class=0)
    assert (e.deletes, e.adjusts, e.total) == (1, 0, 2)
    assert match_boxes(np.zeros((0, 4)), gt) == [] and match_boxes(two, np.zeros((0, 4))) == []
