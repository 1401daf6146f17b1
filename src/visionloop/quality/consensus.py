"""Merging k independent annotations of one image into one (consensus), with a per-image agreement score.

- labels: weighted majority vote (a tie goes to the class of the first answer among the tied ones);
- tags: a class is kept when answers of at least ``min_votes`` annotators hold it;
- boxes: weighted box fusion (Solovyev, Wang and Gabruseva, "Weighted boxes fusion", Image and Vision Computing
  2021): every box, heaviest first, joins the fused cluster it overlaps most (IoU > ``iou_threshold``) or starts a
  new one; a cluster's box is the weight-averaged corners of its members, its confidence the mean member weight
  scaled by min(T, k) / k (T members), with annotators' weights for scores: the weighted share of annotators who
  drew it. Two changes for annotators: clusters are formed across classes and the
  class is the weighted majority of the members (an annotator who picked the wrong class still confirms the
  object), and a cluster takes at most one box per annotator. Clusters confirmed by at least ``min_votes``
  annotators (default ceil(k / 2)) are kept;
- instances: the same clustering on mask IoU (an instance joins the cluster whose members it overlaps most on
  average), the fused mask is a pixel-wise vote of the members (a pixel is in when members holding more than half
  of the cluster's weight have it: 2 of 3, both of 2), its box the mask's bounding box;
- semantic masks: a pixel-wise weighted vote over the classes (ignored pixels abstain; ties go to the lower id).

The agreement of the image is the mean pairwise :func:`~visionloop.quality.agreement.agreement` score of the
answers (1 for a single answer); each answer is also scored against the merged result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from visionloop.core.annotations import RLE, Annotation, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import AnnotationValidationError
from visionloop.quality.agreement import agreement, box_iou, instance_rles, mask_iou

__all__ = ["Merged", "merge_answers", "weighted_box_fusion"]


@dataclass(frozen=True)
class Merged:
    """The merged annotation; ``support`` per merged object (box, instance, tag): the weighted share of annotators
    who found it; ``per_answer``: each answer's agreement score with the merged result; ``pairwise[i][j]``: the
    agreement of answers i and j (1 on the diagonal)."""

    annotation: Annotation
    agreement: float
    per_answer: list[float]
    support: list[float] = field(default_factory=list)
    pairwise: list[list[float]] = field(default_factory=list)

    def with_others(self, i: int) -> float:
        """Answer ``i``'s mean agreement with the other answers (1 for a single answer)."""
        others = [v for j, v in enumerate(self.pairwise[i]) if j != i]
        return float(np.mean(others)) if others else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"agreement": self.agreement, "per_answer": self.per_answer, "support": self.support,
                "pairwise": self.pairwise}


@dataclass
class _Cluster:
    members: list[tuple[int, int, float]]  # (answer, object index, weight)
    shape: Any  # the fused box (4,) or mask (COCO RLE)


def _cluster(
    items: list[tuple[int, int, float]], iou: Callable[[tuple[int, int, float], _Cluster], float],
    fuse: Callable[[list[tuple[int, int, float]]], Any], iou_threshold: float,
) -> list[_Cluster]:
    """Greedy WBF clustering of (answer, index, weight) items, heaviest first; ``fuse`` gives a cluster's shape
    after each addition."""
    clusters: list[_Cluster] = []
    for item in sorted(items, key=lambda t: -t[2]):
        best, best_iou = None, iou_threshold
        for c in clusters:
            if any(m[0] == item[0] for m in c.members):
                continue
            v = iou(item, c)
            if v > best_iou:
                best, best_iou = c, v
        if best is None:
            clusters.append(_Cluster([item], fuse([item])))
        else:
            best.members.append(item)
            best.shape = fuse(best.members)
    return clusters


def _vote(members: list[tuple[int, int, float]], class_of: Callable[[int, int], int]) -> int:
    votes: dict[int, float] = {}
    for a, i, w in members:  # members are heaviest first, so dict order breaks ties
        votes[class_of(a, i)] = votes.get(class_of(a, i), 0.0) + w
    return max(votes, key=lambda c: votes[c])


def weighted_box_fusion(
    answers: Sequence[Boxes], *, weights: Sequence[float] | None = None, iou_threshold: float = 0.55,
    min_votes: int | None = None,
) -> tuple[Boxes, list[float]]:
    """Fuse the boxes of k answers (see the module docstring); returns the fused boxes (no scores) and each box's
    WBF confidence (the weighted share of annotators that found it)."""
    k = len(answers)
    w = _weights(weights, k)
    need = math.ceil(k / 2) if min_votes is None else min_votes
    items = [(a, i, w[a]) for a, b in enumerate(answers) for i in range(len(b))]

    def fuse(members: list[tuple[int, int, float]]) -> np.ndarray:
        xy = np.stack([answers[a].xyxy[i] for a, i, _ in members])
        mw = np.array([m[2] for m in members])
        return (xy * mw[:, None]).sum(axis=0) / mw.sum()

    def iou(item: tuple[int, int, float], cluster: _Cluster) -> float:
        return float(box_iou(answers[item[0]].xyxy[item[1]][None], cluster.shape[None])[0, 0])

    kept = [c for c in _cluster(items, iou, fuse, iou_threshold) if len(c.members) >= need]
    if not kept:
        return Boxes.empty(), []
    classes = [_vote(c.members, lambda a, i: int(answers[a].class_id[i])) for c in kept]
    return Boxes(np.stack([c.shape for c in kept]), classes), [sum(m[2] for m in c.members) / sum(w) for c in kept]


def _weights(weights: Sequence[float] | None, k: int) -> list[float]:
    if k == 0:
        raise AnnotationValidationError("answers", expected="at least one answer to merge", actual=0)
    w = [1.0] * k if weights is None else [float(x) for x in weights]
    if len(w) != k or any(not math.isfinite(x) or x <= 0 for x in w):
        raise AnnotationValidationError("weights", expected=f"{k} positive numbers", actual=list(w)[:10])
    return w


def _instances(answers: Sequence[Instances], w: list[float], iou_threshold: float, need: int,
               size: tuple[int, int] | None) -> tuple[Instances, list[float]]:
    rles = [instance_rles(a, size) for a in answers]
    items = [(a, i, w[a]) for a, r in enumerate(rles) for i in range(len(r))]
    pair = {(a, b): mask_iou(rles[a], rles[b]) for a in range(len(rles)) for b in range(len(rles)) if a != b}

    def iou(item: tuple[int, int, float], cluster: _Cluster) -> float:  # mean mask IoU with the members
        return float(np.mean([pair[item[0], a][item[1], i] for a, i, _ in cluster.members]))

    def vote(members: list[tuple[int, int, float]]) -> dict[str, Any]:
        shapes = [rles[a][i] for a, i, _ in members]
        xywh = np.array([mask_utils.toBbox(r) for r in shapes])
        x0, y0 = np.floor(xywh[:, :2].min(axis=0)).astype(int)
        x1, y1 = np.ceil((xywh[:, :2] + xywh[:, 2:]).max(axis=0)).astype(int)
        votes = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), dtype=np.float64)
        for r, (_, _, weight) in zip(shapes, members, strict=True):  # counted in the members' window only
            votes += weight * mask_utils.decode(r)[y0:y1, x0:x1]
        out = np.zeros(tuple(shapes[0]["size"]), dtype=np.uint8, order="F")
        out[y0:y1, x0:x1] = votes * 2 > sum(m[2] for m in members)
        return mask_utils.encode(out)

    clusters = [c for c in _cluster(items, iou, lambda _: None, iou_threshold) if len(c.members) >= need]
    for c in clusters:
        c.shape = vote(c.members) if len(c.members) > 1 else rles[c.members[0][0]][c.members[0][1]]
    kept = [c for c in clusters if mask_utils.area(c.shape) > 0]
    boxes = np.array([mask_utils.toBbox(c.shape) for c in kept], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    classes = [_vote(c.members, lambda a, i: int(answers[a].boxes.class_id[i])) for c in kept]
    segs: list[Any] = [RLE((int(c.shape["size"][0]), int(c.shape["size"][1])), c.shape["counts"].decode("ascii"))
                       for c in kept]
    support = [sum(m[2] for m in c.members) / sum(w) for c in kept]
    return Instances(Boxes(boxes, classes), segs), support


def _semantic(answers: Sequence[SemanticMask], w: list[float]) -> SemanticMask:
    shapes = {a.mask.shape for a in answers}
    if len(shapes) != 1:
        raise AnnotationValidationError("semantic mask sizes", expected="one size for all answers",
                                        actual=sorted(shapes))
    ignore = answers[0].ignore_index
    classes = sorted({c for a in answers for c in a.class_ids()})
    if not classes:
        return SemanticMask(np.full(answers[0].mask.shape, ignore, dtype=np.int32), ignore)
    votes = np.zeros((len(classes), *answers[0].mask.shape))
    for a, wa in zip(answers, w, strict=True):
        for j, c in enumerate(classes):
            votes[j] += wa * (a.mask == c)
    merged = np.asarray(classes, dtype=np.int32)[votes.argmax(axis=0)]
    merged[votes.max(axis=0) == 0] = ignore
    return SemanticMask(merged, ignore)


def _merge(answers: Sequence[Annotation], w: list[float], iou_threshold: float, need: int,
           size: tuple[int, int] | None) -> tuple[Annotation, list[float]]:
    first = answers[0]
    if isinstance(first, Label):
        labels = [a.class_id for a in answers if isinstance(a, Label)]
        members = [(a, 0, w[a]) for a in sorted(range(len(labels)), key=lambda a: -w[a])]
        cls = _vote(members, lambda a, _: labels[a])
        return Label(cls), [sum(wa for c, wa in zip(labels, w, strict=True) if c == cls) / sum(w)]
    if isinstance(first, Tags):
        sets = [a.class_ids for a in answers if isinstance(a, Tags)]
        held = {c: [a for a, t in enumerate(sets) if c in t] for c in sorted(set().union(*sets))}
        kept = [c for c, who in held.items() if len(who) >= need]
        return Tags(frozenset(kept)), [sum(w[a] for a in held[c]) / sum(w) for c in kept]
    if isinstance(first, Boxes):
        return weighted_box_fusion(answers, weights=w, iou_threshold=iou_threshold,  # type: ignore[arg-type]
                                   min_votes=need)
    if isinstance(first, Instances):
        return _instances(answers, w, iou_threshold, need, size)  # type: ignore[arg-type]
    return _semantic(answers, w), []  # type: ignore[arg-type]


def merge_answers(
    answers: Sequence[Annotation], *, weights: Sequence[float] | None = None, iou_threshold: float = 0.55,
    min_votes: int | None = None, size: tuple[int, int] | None = None,
) -> Merged:
    """Merge k answers of one image (all of one annotation type). ``weights``: per answer (e.g. the annotators'
    honeypot scores), default equal; ``min_votes``: annotators needed to keep a tag, box or instance (default
    ceil(k / 2)); ``size`` (height, width): needed only for instances outlined by polygons."""
    w = _weights(weights, len(answers))
    kinds = {type(a) for a in answers}
    if len(kinds) != 1:
        raise AnnotationValidationError("answers", expected="one annotation type",
                                        actual=sorted(k.__name__ for k in kinds))
    need = math.ceil(len(answers) / 2) if min_votes is None else min_votes
    if not 1 <= need <= len(answers):
        raise AnnotationValidationError("min_votes", expected=f"1..{len(answers)}", actual=need)
    merged, support = _merge(answers, w, iou_threshold, need, size)
    k = len(answers)
    pairwise = np.eye(k)
    for i, j in combinations(range(k), 2):
        pairwise[i, j] = pairwise[j, i] = agreement(answers[i], answers[j], iou_threshold=iou_threshold,
                                                    size=size).score
    return Merged(annotation=merged, agreement=float(pairwise[np.triu_indices(k, 1)].mean()) if k > 1 else 1.0,
                  per_answer=[agreement(merged, a, iou_threshold=iou_threshold, size=size).score for a in answers],
                  support=support, pairwise=pairwise.tolist())
