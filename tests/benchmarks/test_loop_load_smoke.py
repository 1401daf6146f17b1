"""CI smoke of benchmarks/loop_load.py: the web API and the model server answer in all three conditions (idle, a
training in the platform's job queue, the same training unniced) and the JSON holds each condition's percentiles."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
@pytest.mark.ci
def test_loop_load_benchmark_smoke(bccd_dir) -> None:  # noqa: ANN001
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "loop_load.py"), "--smoke"],
                         capture_output=True, text=True, timeout=900, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((REPO / "benchmarks" / "results" / "loop_load.smoke.json").read_text())
    assert result["benchmark"] == "loop_load" and result["smoke"] is True
    for condition in ("idle", "job_queue", "unniced"):
        for server in ("web_api", "model_server"):
            figures = result["conditions"][condition][server]
            assert figures["errors"] == 0 and figures["requests"] > 0, (condition, server, figures)
            assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"], (condition, server, figures)
    assert set(result["ratios"]) >= {"job_queue_web_api_p99_vs_idle", "unniced_model_server_p99_vs_idle"}
