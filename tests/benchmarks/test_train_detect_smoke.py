"""CI smoke of benchmarks/train_detect.py: both recipes train, evaluate and time on a few BCCD images."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_train_detect_benchmark_smoke(bccd_dir):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_detect.py"), "--smoke"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((REPO / "benchmarks" / "results" / "train_detect.smoke.json").read_text())
    assert result["model"] == "fasterrcnn_mobilenet_v2_fpn" and result["smoke"] is True
    for side in ("ours", "reference"):
        assert result[side]["train_images_per_s"] > 0
        assert 0.0 <= result[side]["map50"] <= 1.0
        assert result[side]["latency_batch1"]["median_ms"] > 0
