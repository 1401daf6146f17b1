"""CI smokes of the other benchmarks: each runs end to end on a few real images and writes its JSON result.

Speed is what the full runs show; a smoke only proves the script still works against the library, so nothing here
asserts a time.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.web.conftest import CHROMIUM


@pytest.mark.parametrize("name", ["serve", "tiles", "train_classify", "train_semantic", "preannotation", "assist",
                                  "label_errors", "similarity"])
def test_benchmark_smoke_writes_its_result(name: str, bccd_dir, dsb_dir) -> None:  # noqa: ANN001
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--smoke"],
                         capture_output=True, text=True, timeout=900, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((REPO / "benchmarks" / "results" / f"{name}.smoke.json").read_text())
    assert result["benchmark"] == name and result["smoke"] is True and len(result) > 3, result


def test_active_learning_smoke_has_every_curve(bccd_dir) -> None:  # noqa: ANN001
    """benchmarks/active_learning.py --smoke --detection: every strategy's curve on digits and BCCD crops, the
    labels each needs, the plot, and the detection rounds (uncertainty and random)."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "active_learning.py"), "--smoke", "--detection"],
                         capture_output=True, text=True, timeout=900, cwd=REPO,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((REPO / "benchmarks" / "results" / "active_learning.smoke.json").read_text())
    assert result["benchmark"] == "active_learning" and result["smoke"] is True
    assert (REPO / "benchmarks" / "results" / result["plot"]).stat().st_size > 10_000
    for name in ("digits", "bccd"):
        r = result["datasets"][name]
        assert set(r["curves"]) == {"random", "entropy", "margin", "least_confidence", "margin+kcenter",
                                   "margin+cluster", "typiclust"}
        for c in r["curves"].values():
            assert c["labels"][0] == r["start"] and c["labels"][-1] == r["budget"]
            assert all(0.0 <= a <= 1.0 for a in c["accuracy"]["mean"])
        for m in ("accuracy", "balanced_accuracy"):
            assert 0.5 < r["metrics"][m]["full_data"] <= 1.0 and set(r["metrics"][m]["labels_to_target"]) == set(
                r["curves"])
    det = result["detection"]
    assert set(det["curves"]) == {"random", "box_uncertainty"}
    assert all(c["labels"] == [4, 6] for c in det["curves"].values())


UI_FIGURES = {"open_5000_boxes", "drag_5000_boxes_p95_frame", "next_image", "first_grid_page",
              "deep_page_keyset_vs_offset", "deep_page_keyset_vs_offset_class_filter", "large_image_first_view",
              "pyramid_build_peak_memory", "save_round_trip"}


def test_ui_benchmark_smoke_measures_every_figure_and_its_baseline(bccd_dir) -> None:  # noqa: ANN001
    """benchmarks/ui.py in Chromium: every figure of the web platform with the naive approach's beside it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ui.py"), "--smoke"],
                         capture_output=True, text=True, timeout=900, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((REPO / "benchmarks" / "results" / "ui.smoke.json").read_text())
    assert result["benchmark"] == "ui" and result["smoke"] is True
    figures = result["figures"]
    assert set(figures) == UI_FIGURES, set(figures) ^ UI_FIGURES
    for name, f in figures.items():
        assert f["ours"] > 0 and f["naive"] > 0 and math.isfinite(f["ratio"]), (name, f)
        # the ratio is written with two decimals (0.19 for 416.9 / 2140.7)
        assert f["ratio"] == pytest.approx(f["naive"] / f["ours"], rel=0.02, abs=0.0051), (name, f)
        assert f["naive_is"], name
    assert "open_5000_boxes" in out.stdout  # the table is printed
