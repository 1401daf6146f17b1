"""Epoch batches in an order that is a pure function of ``(seed, epoch)``, with per-sample seeded augmentation.

:class:`EpochLoader` implements :class:`visionloop.training.loop.EpochData` over any map-style dataset. Each sample
is loaded with every RNG (torch, numpy, python) seeded from ``(seed, epoch, position in epoch)`` and restored
afterwards, so the random augmentation of a sample does not depend on which worker loads it, on how many batches
were skipped on resume, or on anything the model did with the global RNG. That is what makes ``kill -9`` + resume
reproduce an uninterrupted run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["EpochLoader", "EpochOrder", "SeededDataset", "ShuffleOrder", "derive_seed"]


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed that is a pure function of ``seed`` and ``keys``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)]).generate_state(1)[0])


class EpochOrder(Protocol):
    """Which dataset indexes epoch ``epoch`` visits, in order (may repeat indexes: sampling with replacement)."""

    def order(self, epoch: int) -> np.ndarray: ...


class ShuffleOrder:
    """A fresh permutation of ``range(n)`` per epoch (``shuffle=False``: identity)."""

    def __init__(self, n: int, *, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng(derive_seed(self.seed, epoch, 1)).permutation(self.n)


class SeededDataset(Dataset):
    """Wraps a dataset: ``ds[(index, seed)]`` loads ``index`` with all RNGs seeded from ``seed``, then restores them."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        py, npst = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)
            try:
                return self.dataset[int(index)]
            finally:
                random.setstate(py)
                np.random.set_state(npst)


class EpochLoader:
    """Batches of ``dataset`` for epoch ``e``: ``order.order(e)`` cut into ``batch_size`` chunks.

    ``order``: a :class:`ShuffleOrder` (default) or a :class:`visionloop.data.sampler.ClassBalancedOrder`.
    ``num_workers``: DataLoader worker processes (0: load in the main process, best on 2 cores with a decode cache).
    """

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int,
        seed: int,
        order: EpochOrder | None = None,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        num_workers: int = 0,
    ) -> None:
        self.dataset = SeededDataset(dataset)
        self.batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.order = order or ShuffleOrder(len(dataset), seed=seed)
        self.collate_fn, self.num_workers = collate_fn, num_workers

    def _chunks(self, epoch: int) -> list[list[tuple[int, int]]]:
        idx = self.order.order(epoch)
        keys = [(int(i), derive_seed(self.seed, epoch, 2, pos)) for pos, i in enumerate(idx)]
        chunks = [keys[i:i + self.batch_size] for i in range(0, len(keys), self.batch_size)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size and len(chunks) > 1:
            chunks.pop()
        return chunks

    def num_batches(self, epoch: int) -> int:
        return len(self._chunks(epoch))

    def batches(self, epoch: int, *, start: int = 0) -> Iterable[Any]:
        chunks = self._chunks(epoch)[start:]
        if not chunks:
            return iter(())
        # An own generator: creating the iterator must not draw from the global torch RNG (the model's dropout
        # stream), or a resumed epoch would diverge from an uninterrupted one.
        gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch, 3))
        loader = DataLoader(self.dataset, batch_sampler=_Fixed(chunks), num_workers=self.num_workers,
                            collate_fn=self.collate_fn, persistent_workers=False, generator=gen)
        return iter(loader)


class _Fixed(torch.utils.data.Sampler):
    def __init__(self, chunks: Sequence[list[tuple[int, int]]]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)
