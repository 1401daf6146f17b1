"""Training checkpoints and feature caches are read with weights_only=True: resume state is plain data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models.test_safe_loading import evil_file
from visionloop.models.weights import UnsafeFileError
from visionloop.training.loop import LoopConfig, TrainLoop
from visionloop.training.strategies import FeatureStore


def _loop() -> TrainLoop:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return TrainLoop(model=model, optimizer=opt, scheduler=sched, loss_fn=lambda m, b: (m(b).sum(), {}),
                     data=None, config=LoopConfig(epochs=1))  # type: ignore[arg-type]


def test_a_training_checkpoint_is_plain_data_and_round_trips(tmp_path: Path) -> None:
    import random

    loop = _loop()
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    loop.save_checkpoint(tmp_path / "last.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    torch.load(tmp_path / "last.pt", weights_only=True)  # no pickled object anywhere in it
    other = _loop()
    other.load_checkpoint(tmp_path / "last.pt")
    from visionloop.training.loop import _set_rng_state

    _set_rng_state(other._resume_rng)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_a_training_checkpoint_holding_pickled_code_is_refused(tmp_path: Path) -> None:
    path, marker = evil_file(tmp_path)
    with pytest.raises(UnsafeFileError, match="training checkpoint"):
        _loop().load_checkpoint(path)
    assert not marker.exists()


def test_feature_cache_is_plain_tensors_and_an_unsafe_one_is_ignored(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "f.pt")
    store.put("a:eval", np.arange(4, dtype=np.float32))
    store.save()
    again = FeatureStore(tmp_path / "f.pt")
    assert np.array_equal(again.get("a:eval"), np.arange(4, dtype=np.float32))
    path, marker = evil_file(tmp_path)
    assert FeatureStore(path).data == {}  # a cache: recomputed, never unpickled
    assert not marker.exists()
