"""The rules CI lives by: under ``CI=true`` a skip is a failure, and ``.ci/run`` runs exactly the README's test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

_SAMPLE = '''
import pytest

def test_needs_something():
    pytest.skip("no browser here")

@pytest.mark.slow
def test_long():
    pass

@pytest.mark.xfail(reason="known")
def test_known():
    assert False

def test_fine():
    assert True
'''


def _run_sample(tmp_path: Path, ci: str | None) -> str:
    (tmp_path / "test_sample.py").write_text(_SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), "-c", os.devnull, str(tmp_path / "test_sample.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    return r.stdout + r.stderr


def test_a_skip_fails_under_ci_but_slow_and_xfail_do_not(tmp_path: Path) -> None:
    out = _run_sample(tmp_path, "true")
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed" in out, out
    assert "skipped under CI=true" in out and "no browser here" in out


def test_a_skip_stays_a_skip_outside_ci(tmp_path: Path) -> None:
    out = _run_sample(tmp_path, None)
    assert "1 passed, 2 skipped, 1 xfailed" in out, out


def test_ci_script_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    command = re.search(r"^(make test)\s+#", readme, flags=re.M)
    assert command is not None, "the README must start with the test command"
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[-1] == command.group(1)
    assert "chromium" in (REPO / ".ci" / "run").read_text()  # the browser tests run in CI, never skip


@pytest.mark.slow
@pytest.mark.ci
def test_real_data_training_subsets_start_on_one_thread_and_follow_the_machine(tmp_path: Path) -> None:
    import torch

    from visionloop.training.loop import AdaptiveThreads, default_hooks

    assert torch.get_num_threads() == 1  # the conftest fixture: CI's training subsets stay fast on a busy machine
    hooks = default_hooks(tmp_path / "run", progress=False)  # ... and grow to the cores nobody else uses
    (governor,) = [h.governor for h in hooks if isinstance(h, AdaptiveThreads)]
    assert (governor.low, governor.high) == (1, max(1, os.cpu_count() or 1))
