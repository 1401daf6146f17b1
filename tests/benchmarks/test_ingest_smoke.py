"""CI runs a fast smoke of each benchmark: the script works and writes its JSON (no timing assertions)."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_ingest_benchmark_smoke():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ingest.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((REPO / "benchmarks" / "results" / "ingest.smoke.json").read_text())
    assert result["images"] == 200 and result["boxes"] == 2000
    for key in ("floor_images_per_s", "import_images_per_s", "import_vs_floor", "stats_ms", "page_ms"):
        assert result[key] > 0, key
