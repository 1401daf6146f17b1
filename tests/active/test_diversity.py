"""Diversity and cold start on small point sets whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.active.diversity import cluster_top, diverse_top, kcenter_greedy, typicality, typiclust
from visionloop.core.errors import AnnotationValidationError


def _near_copies(rng: np.random.Generator, n: int, at: np.ndarray) -> np.ndarray:
    return at + rng.normal(scale=1e-3, size=(n, len(at)))


def test_kcenter_picks_a_batch_of_near_copies_once() -> None:
    rng = np.random.default_rng(0)
    copies = _near_copies(rng, 20, np.zeros(8))
    others = rng.normal(size=(5, 8)) * 5
    x = np.concatenate([copies, others])
    picks = kcenter_greedy(x, 6, first=0)
    idx = [p.index for p in picks]
    assert sum(i < 20 for i in idx) == 1 and set(idx[1:]) == set(range(20, 25))
    assert picks[0].index == 0 and picks[0].distance == np.inf
    assert sum(p.index < 20 for p in kcenter_greedy(x, 6)) == 1  # started far from the mean: the same cover
    assert all(a.distance >= b.distance for a, b in zip(picks[1:], picks[2:], strict=False))  # farthest first


def test_kcenter_keeps_away_from_labelled_points() -> None:
    x = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [0.0, 10.0]])
    picks = kcenter_greedy(x, 2, labelled=np.array([[0.0, 0.05]]))
    assert {p.index for p in picks} == {2, 3}
    started = kcenter_greedy(x, 2, labelled=np.array([[0.0, 0.05]]), first=1)  # the most uncertain comes first
    assert [p.index for p in started][0] == 1 and started[0].distance == pytest.approx(np.hypot(0.1, 0.05))
    assert len(kcenter_greedy(x, 10)) == 4 and kcenter_greedy(x, 0) == []
    with pytest.raises(AnnotationValidationError, match="dimensions"):
        kcenter_greedy(x, 2, labelled=np.zeros((1, 3)))


def test_diverse_top_takes_the_uncertain_but_not_their_copies() -> None:
    rng = np.random.default_rng(1)
    copies = _near_copies(rng, 10, np.ones(4))          # the 10 most uncertain are near-copies
    rest = rng.normal(size=(40, 4)) * 3
    x = np.concatenate([copies, rest])
    scores = np.concatenate([np.full(10, 0.9) + rng.uniform(0, 0.01, 10), rng.uniform(0, 0.8, 40)])
    plain = list(np.argsort(-scores)[:5])
    assert all(i < 10 for i in plain)  # ranking by uncertainty alone: five copies
    picks = diverse_top(scores, x, 5, factor=5)
    idx = [p.index for p in picks]
    assert idx[0] == int(np.argmax(scores)) and sum(i < 10 for i in idx) == 1
    top25 = set(np.argsort(-scores)[:25].tolist())
    assert set(idx) <= top25  # only among the 5 x n most uncertain
    with pytest.raises(AnnotationValidationError, match="one per embedding"):
        diverse_top(scores[:3], x, 2)


def test_cluster_top_takes_the_centre_of_each_uncertain_group_and_the_odd_ones_last() -> None:
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    groups = np.concatenate([c + rng.normal(scale=0.5, size=(12, 2)) for c in centres])  # 36 uncertain points
    odd = np.array([[30.0, 30.0], [-30.0, 5.0]])  # as uncertain, but alone
    certain = rng.normal(size=(60, 2)) * 20
    x = np.concatenate([groups, odd, certain])
    scores = np.concatenate([rng.uniform(0.7, 0.9, 36), [0.8, 0.8], rng.uniform(0.0, 0.3, 60)])
    picks = cluster_top(scores, x, 5, factor=7, seed=0)  # the 35 most uncertain: the groups' and the odd two
    first = picks[:3]  # the clusters with the most uncertainty: one point of each group, near its middle
    assert sorted(int(np.argmin(((centres - x[p.index]) ** 2).sum(1))) for p in first) == [0, 1, 2]
    assert all(p.index < 36 and p.distance < 1.0 and p.size > 5 for p in first)
    assert {p.index for p in picks[3:]} == {36, 37} and all(p.size == 1 for p in picks[3:])
    assert sum(p.size for p in picks) == 35  # every candidate is in one cluster, and only candidates
    far = kcenter_greedy(x[:38], 3, first=0)  # k-center greedy over the same points takes the odd two at once
    assert {36, 37} <= {p.index for p in far}
    assert [p.index for p in cluster_top(scores, x, 2, factor=1)] == list(np.argsort(-scores, kind="stable")[:2])
    assert len(cluster_top(scores[:5], x[:5], 10)) == 5 and cluster_top(scores, x, 0) == []
    with pytest.raises(AnnotationValidationError, match="one per embedding"):
        cluster_top(scores[:3], x, 2)


def test_typicality_is_highest_in_the_dense_middle() -> None:
    x = np.array([[0.0], [0.1], [-0.1], [0.2], [-0.2], [5.0]])
    t = typicality(x, k=2)
    assert int(np.argmax(t)) == 0 and int(np.argmin(t)) == 5
    assert typicality(np.zeros((1, 3))).tolist() == [0.0]


def test_typiclust_picks_the_centre_of_each_cluster_largest_first() -> None:
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    sizes = [60, 30, 10]
    x = np.concatenate([c + rng.normal(size=(s, 2)) for c, s in zip(centres, sizes, strict=True)])
    owner = np.repeat([0, 1, 2], sizes)
    picks = typiclust(x, 3, seed=0)
    assert [owner[p.index] for p in picks] == [0, 1, 2]
    assert [p.size for p in picks] == sizes
    for p in picks:  # typical: near its blob's centre, not an outlier of it
        assert np.linalg.norm(x[p.index] - centres[owner[p.index]]) < 1.0
    # a labelled point covers the big cluster: the picks go to the other two first
    covered = typiclust(x, 2, labelled=centres[:1], seed=0)
    assert sorted(owner[p.index] for p in covered) == [1, 2]
    assert len(typiclust(x[:4], 10)) == 4
