"""A background training job's threads follow the cores the other processes leave free."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from visionloop.core.settings import Settings
from visionloop.serving.jobs.runner import ADAPTIVE_THREADS, child_env
from visionloop.training.loop import AdaptiveThreads, default_hooks
from visionloop.training.threads import ENV_VARIABLE, CpuSample, ThreadGovernor, free_cores, governor_from_env, read_cpu


def test_free_cores_subtracts_this_process_from_the_machine() -> None:
    before = CpuSample(busy_s=100.0, own_s=10.0, at=0.0)
    # 4 s of machine CPU in 2 s, 3 of them ours: the others used half a core of two
    assert free_cores(before, CpuSample(busy_s=104.0, own_s=13.0, at=2.0), cores=2) == pytest.approx(1.5)
    assert free_cores(before, CpuSample(busy_s=100.0, own_s=10.0, at=2.0), cores=2) == 2.0  # idle
    assert free_cores(before, CpuSample(busy_s=110.0, own_s=10.0, at=2.0), cores=2) == 0.0  # never below zero
    assert free_cores(before, before, cores=2) == 2.0  # no time passed


class Machine:
    """Readings with a chosen load of the others, and a clock stepped by hand."""

    def __init__(self) -> None:
        self.now, self.busy, self.own, self.others = 0.0, 0.0, 0.0, 0.0
        self.set_to: list[int] = []

    def step(self, seconds: float, others: float, own: float = 1.0) -> None:
        self.now += seconds
        self.busy += (others + own) * seconds
        self.own += own * seconds

    def read(self) -> CpuSample:
        return CpuSample(busy_s=self.busy, own_s=self.own, at=self.now)


def test_governor_grows_on_idle_cores_and_gives_them_back_after_two_agreeing_windows() -> None:
    m = Machine()
    g = ThreadGovernor(1, 2, interval_s=3.0, cores=2, read=m.read, set_threads=m.set_to.append, clock=lambda: m.now)
    g.start()
    assert m.set_to == [1]  # starts low
    m.step(1.0, others=0.0)
    assert g.poll() == 1 and m.set_to == [1]  # within the window: not measured
    m.step(3.0, others=0.1)
    assert g.poll() == 1  # one window says 2: not yet
    m.step(3.0, others=0.1)
    assert g.poll() == 2 and m.set_to == [1, 2]  # the second agrees
    m.step(3.0, others=0.9)  # a web request burst for one window
    assert g.poll() == 2
    m.step(3.0, others=0.0)
    assert g.poll() == 2 and m.set_to == [1, 2]  # did not flap
    for _ in range(2):
        m.step(3.0, others=0.8)  # someone else works: 1.2 cores free
        g.poll()
    assert g.threads == 1 and m.set_to == [1, 2, 1] and len(g.changes) == 2
    for _ in range(3):
        m.step(3.0, others=0.0)
        g.poll()
    assert g.threads == 2  # never above high, even with more cores free
    assert ThreadGovernor(1, 2, cores=8).target(7.5) == 2 and ThreadGovernor(1, 2, cores=8).target(0.1) == 1
    with pytest.raises(ValueError, match="low <= high"):
        ThreadGovernor(3, 2)


def test_governor_without_readings_keeps_its_threads() -> None:
    g = ThreadGovernor(1, 4, interval_s=0.0, cores=4, read=lambda: None, set_threads=lambda n: None)
    g.start()
    assert [g.poll() for _ in range(3)] == [1, 1, 1]


def test_real_readings_see_another_process_working() -> None:
    first = read_cpu()
    assert first is not None and first.busy_s > 0, "Linux has /proc/stat"
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # the spinner starts
        before = read_cpu()
        time.sleep(1.5)
        after = read_cpu()
    finally:
        spinner.kill()
        spinner.wait()
    assert before is not None and after is not None
    cores = 2
    # the spinner is a whole core of another process, or the machine is busier still: either way not ours
    assert free_cores(before, after, cores) <= cores - 0.5
    assert after.own_s - before.own_s < 0.5  # this process slept


def test_the_job_runner_asks_for_a_governor_and_the_loop_installs_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    env = child_env(Settings(job_threads=1, job_threads_max=2), tmp_path / "progress.jsonl")
    assert env[ADAPTIVE_THREADS] == "1:2" and env["OMP_NUM_THREADS"] == "1" and ADAPTIVE_THREADS == ENV_VARIABLE
    assert ADAPTIVE_THREADS not in child_env(Settings(job_threads=2, job_threads_max=2), tmp_path / "p.jsonl")
    monkeypatch.setenv(ENV_VARIABLE, env[ADAPTIVE_THREADS])
    governor = governor_from_env()
    assert governor is not None and (governor.low, governor.high) == (1, 2)
    assert any(isinstance(h, AdaptiveThreads) for h in default_hooks(tmp_path / "run", progress=False))
    monkeypatch.delenv(ENV_VARIABLE)
    assert not any(isinstance(h, AdaptiveThreads) for h in default_hooks(tmp_path / "run", progress=False))
    assert governor_from_env({ENV_VARIABLE: "two"}) is None and governor_from_env({}) is None
