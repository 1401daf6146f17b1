"""The generic loop: resume equals an uninterrupted run (epoch end and mid-epoch), metrics file, early stopping."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from visionloop.data import EpochLoader
from visionloop.training.loop import Hook, LoopConfig, TrainLoop, default_hooks, warmup_cosine

X = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class _Aug:
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return X[i] + 0.1 * torch.randn(5), Y[i]


class _Boom(Hook):
    def __init__(self, at):
        self.at = at

    def after_step(self, loop, loss, logs):
        if loop.state.global_step == self.at:
            raise KeyboardInterrupt


def _loop(run_dir, *, hooks=(), checkpoint_every=0, patience=None, lr=1e-2, monitor="val_loss"):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.AdamW(m.parameters(), lr)
    data = EpochLoader(_Aug(), batch_size=8, seed=1)
    sch = warmup_cosine(opt, warmup_steps=4, total_steps=5 * data.num_batches(0))
    return TrainLoop(
        model=m, optimizer=opt, scheduler=sch, data=data,
        loss_fn=lambda mod, b: (nn.functional.cross_entropy(mod(b[0]), b[1]), {}),
        validate=lambda mod: {"val_loss": float(nn.functional.cross_entropy(mod(X), Y))},
        config=LoopConfig(epochs=5, seed=1, checkpoint_every=checkpoint_every, patience=patience, monitor=monitor),
        hooks=[*default_hooks(run_dir, progress=False, patience=patience), *hooks])


@pytest.mark.parametrize(("boom", "every"), [(19, 0), (19, 3), (8, 4)])
def test_resume_after_interrupt_equals_uninterrupted(tmp_path, boom, every):
    full = _loop(tmp_path / "full")
    full.run()
    broken = _loop(tmp_path / "b", hooks=[_Boom(boom)], checkpoint_every=every)
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    resumed = _loop(tmp_path / "b", checkpoint_every=every)
    state = resumed.run(resume_from=tmp_path / "b" / "checkpoints" / "last.pt")
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    strip = lambda hs: [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in hs]  # noqa: E731
    assert strip(state.history) == strip(full.state.history)
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5]
    assert (tmp_path / "b" / "checkpoints" / "best.pt").exists()


def test_warmup_then_cosine():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sch = warmup_cosine(opt, warmup_steps=10, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    assert lrs[0] < 0.2 and max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 10
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] < 0.05


def test_early_stopping(tmp_path):
    loop = _loop(tmp_path, patience=1, lr=0.0, monitor="val_loss")  # lr 0: never improves after epoch 1
    state = loop.run()
    assert state.stopped_early and state.epoch == 2 and state.best_epoch == 1
