"""kill -9 in the middle of an epoch, then --resume: the same final weights and metrics as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.synthetic import make_project

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
from visionloop.storage import Project
from visionloop.training import train
p = Project.open(sys.argv[1])
resume = sys.argv[2] if len(sys.argv) > 2 else None
r = train(p, version="v1", strategy="finetune", epochs=3, model="test_resnet", pretrained=False, image_size=64,
          batch_size=4, progress=False, seed=7, resume=resume)
print(r.run_id)
"""


def _run(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.ci
def test_kill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    proj = make_project(tmp_path / "p", task="classification", n_per_class=20, size=64)
    proj.close()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    root = str(tmp_path / "p")

    full = _run([root], env)
    out, err = full.communicate(timeout=600)
    assert full.returncode == 0, err
    full_id = out.strip().splitlines()[-1]

    victim = _run([root], env)
    runs = tmp_path / "p" / "runs"
    deadline = time.time() + 300
    metrics = None
    while time.time() < deadline:
        found = [d for d in runs.iterdir() if d.name != full_id and (d / "metrics.jsonl").exists()]
        if found and (found[0] / "metrics.jsonl").read_text().strip():
            metrics = found[0] / "metrics.jsonl"
            break
        time.sleep(0.05)
    assert metrics is not None, "the run never finished its first epoch"
    epoch_s = json.loads(metrics.read_text().splitlines()[0])["epoch_seconds"]
    time.sleep(epoch_s / 2)  # middle of epoch 2
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    killed_id = metrics.parent.name
    assert len(metrics.read_text().splitlines()) < 3, "the kill came too late to interrupt training"

    resumed = _run([root, killed_id], env)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert out.strip().splitlines()[-1] == killed_id

    a = torch.load(runs / full_id / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(runs / killed_id / "checkpoints" / "last.pt", weights_only=False)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    strip = [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in a["loop"]["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in b["loop"]["history"]]
    lines = [json.loads(x) for x in (runs / killed_id / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    ra = json.loads((runs / full_id / "result.json").read_text())["val"]
    rb = json.loads((runs / killed_id / "result.json").read_text())["val"]
    assert ra == rb
