"""CI smokes of the other benchmarks: each runs end to end on a few real images and writes its JSON result.

Speed is what the full runs show; a smoke only proves the script still works against the library, so nothing here
asserts a time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("name", ["serve", "tiles", "train_classify", "train_semantic"])
def test_benchmark_smoke_writes_its_result(name: str, bccd_dir, dsb_dir) -> None:  # noqa: ANN001
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--smoke"],
                         capture_output=True, text=True, timeout=900, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((REPO / "benchmarks" / "results" / f"{name}.smoke.json").read_text())
    assert result["benchmark"] == name and result["smoke"] is True and len(result) > 3, result
