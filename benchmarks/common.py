"""Helpers shared by the benchmarks: timing and writing results as JSON under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("VISIONLOOP_SHARED", Path(__file__).resolve().parents[2] / "shared"))
"""The real data beside the repository (``../shared``), or where ``VISIONLOOP_SHARED`` points."""


def timed(fn: Callable[[], Any], *, repeat: int = 1) -> tuple[float, Any]:
    """Best wall time in seconds over ``repeat`` runs, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def write_result(name: str, data: dict[str, Any], *, smoke: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}.smoke.json" if smoke else f"{name}.json")
    data = {"benchmark": name, "smoke": smoke, "machine": {"python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": platform.processor()}, **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
