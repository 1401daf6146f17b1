"""Honeypot / agreement scoring on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import AnnotationValidationError
from visionloop.quality.agreement import agreement, box_iou, match_pairs


def test_label_and_tags() -> None:
    assert agreement(Label(3), Label(3)).score == 1.0
    wrong = agreement(Label(3), Label(4))
    assert wrong.score == 0.0 and wrong.wrong_class == 1
    t = agreement(Tags(frozenset({1, 2, 3})), Tags(frozenset({2, 3, 4})))
    assert t.score == pytest.approx(2 / 4)  # Jaccard: {2, 3} / {1, 2, 3, 4}
    assert (t.matched, t.missed, t.extra) == (2, 1, 1)
    assert agreement(Tags(), Tags()).score == 1.0


def test_box_iou_by_hand() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    assert iou[0, 0] == pytest.approx(50 / 150) and iou[0, 1] == 0.0


def test_boxes_precision_recall_f1_mean_iou() -> None:
    gold = Boxes([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], [1, 1, 2])
    # the first box shifted by 1 px (IoU 90/110), the second exact but of another class, the third missed, one extra
    answer = Boxes([[1, 0, 11, 10], [20, 20, 40, 40], [80, 80, 90, 90]], [1, 2, 1])
    a = agreement(gold, answer, iou_threshold=0.5)
    assert (a.matched, a.wrong_class, a.missed, a.extra) == (1, 1, 2, 2)
    assert a.precision == pytest.approx(1 / 3) and a.recall == pytest.approx(1 / 3)
    assert a.f1 == a.score == pytest.approx(1 / 3)
    assert a.mean_iou == pytest.approx(90 / 110)
    assert agreement(gold, gold).score == 1.0
    assert agreement(Boxes.empty(), Boxes.empty()).score == 1.0
    assert agreement(gold, Boxes.empty()).score == 0.0
    # a stricter threshold loses the shifted box
    assert agreement(gold, answer, iou_threshold=0.95).matched == 0


def test_matching_prefers_the_same_class() -> None:
    # a platelet inside a blood cell: the answer's two boxes overlap both gold boxes
    iou = np.array([[0.6, 0.7], [0.7, 0.6]])
    same = np.array([[True, False], [False, True]])
    assert match_pairs(iou, same, 0.5) == [(0, 0), (1, 1)]  # same class wins over the higher IoU
    assert match_pairs(iou, np.zeros((2, 2), bool), 0.5) == [(0, 1), (1, 0)]  # else the highest summed IoU


def _square(x: int, y: int, s: int, size: int = 32) -> RLE:
    m = np.zeros((size, size), bool)
    m[y:y + s, x:x + s] = True
    return RLE.encode(m)


def test_instances_mask_iou_and_polygons() -> None:
    gold = Instances(Boxes([[0, 0, 8, 8]], [1]), [_square(0, 0, 8)])
    half = Instances(Boxes([[4, 0, 12, 8]], [1]), [_square(4, 0, 8)])  # mask IoU 32 / 96
    assert agreement(gold, half, iou_threshold=0.3).mean_iou == pytest.approx(32 / 96)
    assert agreement(gold, half, iou_threshold=0.5).score == 0.0
    poly = Instances(Boxes([[0, 0, 8, 8]], [1]), [[[0, 0, 8, 0, 8, 8, 0, 8]]])
    with pytest.raises(AnnotationValidationError, match="height, width"):
        agreement(gold, poly)
    assert agreement(gold, poly, size=(32, 32)).score == 1.0


def test_semantic_per_class_iou_ignores_unlabelled() -> None:
    ref = np.zeros((4, 4), np.int32)
    ref[:2] = 1
    ans = ref.copy()
    ans[1, :] = 0  # 4 of the 8 class-1 pixels lost
    ans[3, 3] = 255  # left unlabelled by the answer: a miss
    a = agreement(SemanticMask(ref), SemanticMask(ans))
    assert a.per_class_iou[1] == pytest.approx(4 / 8)
    assert a.per_class_iou[0] == pytest.approx(7 / 12)  # 7 of the 8 reference pixels, plus 4 taken from class 1
    assert a.score == pytest.approx((4 / 8 + 7 / 12) / 2)
    ref[0, 0] = 255  # unlabelled in the reference: not scored, whatever the answer says
    assert agreement(SemanticMask(ref), SemanticMask(ans)).per_class_iou[1] == pytest.approx(3 / 7)
    nothing = agreement(SemanticMask(ref), SemanticMask(np.full_like(ref, 255)))
    assert nothing.score == 0.0


def test_types_must_match() -> None:
    with pytest.raises(AnnotationValidationError, match="Label"):
        agreement(Label(1), Tags(frozenset({1})))


def _redraw(gt: Boxes, rng: np.random.Generator, *, jitter: float, drop: float, wrong: float,
            n_classes: int) -> Boxes:
    """An annotator's answer: corners moved by ``jitter`` x the box size (sd), boxes dropped and classes changed
    with the given probabilities."""
    size = np.repeat(gt.xyxy[:, 2:] - gt.xyxy[:, :2], 2, axis=0).reshape(-1, 4)
    xyxy = gt.xyxy + rng.normal(0, jitter, gt.xyxy.shape) * size
    xyxy = np.concatenate([np.minimum(xyxy[:, :2], xyxy[:, 2:]), np.maximum(xyxy[:, :2], xyxy[:, 2:])], axis=1)
    cls = np.where(rng.random(len(gt)) < wrong, (gt.class_id + 1) % n_classes, gt.class_id)
    keep = rng.random(len(gt)) >= drop
    return Boxes(xyxy[keep], cls[keep])


@pytest.mark.slow
@pytest.mark.ci
def test_honeypot_scores_tell_a_careful_annotator_from_a_sloppy_one_on_bccd(bccd_dir) -> None:
    from visionloop.formats import get_format

    dataset = get_format("voc").load(bccd_dir)
    golds = [s.annotation for s in dataset.samples[:60] if isinstance(s.annotation, Boxes) and len(s.annotation)]
    rng = np.random.default_rng(0)
    n = len(dataset.classes)
    careful = [agreement(g, _redraw(g, rng, jitter=0.02, drop=0.02, wrong=0.02, n_classes=n)).score for g in golds]
    sloppy = [agreement(g, _redraw(g, rng, jitter=0.15, drop=0.2, wrong=0.15, n_classes=n)).score for g in golds]
    # measured on 60 BCCD images: mean F1 0.971 (careful) against 0.669 (sloppy); the careful one wins on all 60
    assert np.mean(careful) >= 0.93 and np.mean(sloppy) <= 0.8
    assert np.mean(np.array(careful) > np.array(sloppy)) >= 0.9
