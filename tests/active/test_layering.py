"""``visionloop.active`` sits beside ``serving``: it never imports serving, the CLI, the web platform or pipelines
(not even inside a function), and its scorers stay free of torch."""

from __future__ import annotations

import subprocess
import sys

from tests.training.test_layering import _imports


def test_active_never_imports_the_layers_above_it() -> None:
    above = ("visionloop.serving", "visionloop.cli", "visionloop.web", "visionloop.pipelines")
    assert [(f, m) for f, m, _ in _imports("active") if m.startswith(above)] == []


def test_the_scorers_import_without_torch() -> None:
    code = ("import sys; import visionloop.active.acquisition, visionloop.active.diversity; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
