from __future__ import annotations

import numpy as np
import torch

from visionloop.data import ClassBalancedOrder, EpochLoader, ShuffleOrder, imbalance_ratio


def test_class_balanced_order_equalises_classes():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    assert imbalance_ratio(y, 3) == 90
    order = ClassBalancedOrder(y, num_classes=3, seed=0, num_samples=30000)
    share = np.bincount(y[order.order(0)], minlength=3) / 30000
    assert np.allclose(share, 1 / 3, atol=0.02)
    assert np.array_equal(order.order(3), order.order(3))
    assert not np.array_equal(order.order(3), order.order(4))
    sqrt = ClassBalancedOrder(y, num_classes=3, seed=0, power=0.5)
    s = sqrt.expected_class_share(y, 3)
    assert s[0] > s[1] > s[2]


def test_class_balanced_order_for_tags():
    y = np.zeros((100, 2), np.float32)
    y[:95, 0] = 1
    y[95:, 1] = 1
    order = ClassBalancedOrder(y, num_classes=2, seed=1, num_samples=20000)
    idx = order.order(0)
    assert abs(y[idx, 1].mean() - 0.5) < 0.03


class _Noisy:
    """Random 'augmentation' through the global torch RNG."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        return torch.tensor([float(i)]), torch.rand(1)


def test_epoch_loader_is_a_function_of_seed_and_epoch_and_skips_without_drift():
    a = EpochLoader(_Noisy(), batch_size=4, seed=3)
    b = EpochLoader(_Noisy(), batch_size=4, seed=3)
    ea = list(a.batches(2))
    torch.rand(100)  # whatever else uses the global RNG must not matter
    eb = list(b.batches(2))
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(ea, eb, strict=True))
    tail = list(b.batches(2, start=3))
    assert len(tail) == 2 and torch.equal(tail[0][1], ea[3][1])  # same augmentation after skipping
    assert not torch.equal(list(a.batches(1))[0][0], ea[0][0])
    assert a.num_batches(0) == 5
    assert sorted(ShuffleOrder(20, seed=0).order(5).tolist()) == list(range(20))


def test_epoch_loader_with_workers_gives_same_batches():
    a = list(EpochLoader(_Noisy(), batch_size=4, seed=3).batches(0))
    b = list(EpochLoader(_Noisy(), batch_size=4, seed=3, num_workers=2).batches(0))
    assert all(torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
