"""The JSON-lines progress stream a background job's server reads: run id first, fractions, epoch records."""

from __future__ import annotations

import json

import torch
from torch import nn

from visionloop.core.progress import ProgressFile, progress_file
from visionloop.data import EpochLoader
from visionloop.training.loop import LoopConfig, ProgressFileHook, TrainLoop, default_hooks

X = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class _Data:
    def __len__(self):
        return 32

    def __getitem__(self, i):
        return X[i], Y[i]


def test_training_writes_run_id_fractions_and_epoch_records(tmp_path):
    out = tmp_path / "progress.jsonl"
    run_dir = tmp_path / "runs" / "20261202-000000-test-abcd"
    m = nn.Linear(4, 2)
    loop = TrainLoop(model=m, optimizer=torch.optim.SGD(m.parameters(), 0.1),
                     loss_fn=lambda mod, b: (nn.functional.cross_entropy(mod(b[0]), b[1]), {}),
                     data=EpochLoader(_Data(), batch_size=8, seed=0),
                     validate=lambda mod: {"val_loss": float(nn.functional.cross_entropy(mod(X), Y))},
                     config=LoopConfig(epochs=3), hooks=default_hooks(run_dir, progress=False, progress_file=out))
    loop.run()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["run"] == run_dir.name and records[0]["fraction"] == 0.0
    epochs = [r["record"] for r in records if "record" in r]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all("val_loss" in e and "train_loss" in e for e in epochs)
    fractions = [r["fraction"] for r in records]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(r["run"] == run_dir.name for r in records)


def test_no_progress_file_no_hook(tmp_path):
    assert not any(isinstance(h, ProgressFileHook) for h in default_hooks(tmp_path, progress=False))
    assert progress_file(None) is None and progress_file("") is None


def test_writes_are_throttled_unless_forced(tmp_path):
    out = ProgressFile(tmp_path / "sub" / "p.jsonl", min_interval=3600)
    assert out.write(fraction=0.1, message="a")
    assert not out.write(fraction=0.2, message="b")
    assert out.write(fraction=1.5, message="c", force=True, run="r1")
    lines = [json.loads(x) for x in (tmp_path / "sub" / "p.jsonl").read_text().splitlines()]
    assert lines == [{"fraction": 0.1, "message": "a"}, {"fraction": 1.0, "message": "c", "run": "r1"}]


def test_a_linear_classifier_names_its_run_at_once(synthetic_project, tmp_path):
    from visionloop.training import train

    p = synthetic_project("classification")
    out = tmp_path / "progress.jsonl"
    p.settings = p.settings.model_copy(update={"progress_file": str(out)})
    res = train(p, version="v1", strategy="linear", progress=False, model="test_resnet", pretrained=False,
                image_size=32)
    first = json.loads(out.read_text().splitlines()[0])
    assert first["run"] == res.run_id and "linear" in first["message"] and first["fraction"] == 0.0
