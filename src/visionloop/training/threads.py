"""Torch threads that follow the machine: a background training job uses the cores nobody else wants.

A platform server runs training as a niced background job with a bounded thread count (``Settings.job_threads``, one
core left for the pages). On a 2-core machine that halves the speed of a job that runs while nobody uses the pages,
yet running it on every core beside other work is worse: OpenMP threads wait for each other at every barrier, and
one of them preempted by a web request stalls them all (5x slower measured). :class:`ThreadGovernor` takes the middle
way: every few seconds it measures how much CPU the *other* processes use (``/proc/stat`` minus this process's own
time) and sets ``torch.set_num_threads`` to the cores they leave free, within ``low..high``; a change needs two
windows that agree, so a short burst does not make it flap.

The job runner asks for it with :data:`ENV_VARIABLE` (``"low:high"``); without it (a ``visionloop train`` in a
terminal, tests) nothing changes. Linux only (``/proc/stat``); elsewhere the job keeps ``low``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV_VARIABLE", "CpuSample", "ThreadGovernor", "free_cores", "governor_from_env", "read_cpu"]

log = logging.getLogger(__name__)

ENV_VARIABLE = "VISIONLOOP_ADAPTIVE_THREADS"
"""``"low:high"``: the thread range a background job may use (set by the platform's job runner)."""

PROC_STAT = Path("/proc/stat")
HEADROOM = 0.3
"""Cores the others may use beyond a whole number before a thread is given up (0.7 busy of a core: it stays ours)."""


@dataclass(frozen=True)
class CpuSample:
    """Busy CPU seconds of the whole machine and of this process, at ``at`` (monotonic seconds)."""

    busy_s: float
    own_s: float
    at: float


def read_cpu(stat: Path = PROC_STAT) -> CpuSample | None:
    """The machine's busy seconds (every state but idle and iowait, over all cores) and this process's CPU seconds;
    ``None`` where ``/proc/stat`` cannot be read."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    busy = sum(ticks[:8]) - idle  # guest time is already counted in user
    return CpuSample(busy_s=busy / os.sysconf("SC_CLK_TCK"), own_s=time.process_time(), at=time.monotonic())


def free_cores(before: CpuSample, after: CpuSample, cores: int) -> float:
    """Cores the other processes left free between two samples (``cores`` minus their average use)."""
    wall = after.at - before.at
    if wall <= 0:
        return float(cores)
    others = max(0.0, (after.busy_s - before.busy_s) - (after.own_s - before.own_s)) / wall
    return max(0.0, cores - others)


class ThreadGovernor:
    """Sets torch's thread count to the cores others leave free, within
    ``low..high``, measured over windows of ``interval_s``; two agreeing windows make a change. The training loop calls
    :meth:`start` before its first step and :meth:`poll` after each (``visionloop.training.loop.AdaptiveThreads``).

    ``read``, ``set_threads`` and ``clock`` are the real ones by default (``/proc/stat``, ``torch.set_num_threads``,
    ``time.monotonic``).
    """

    def __init__(self, low: int, high: int, *, interval_s: float = 3.0, cores: int | None = None,
                 read: Callable[[], CpuSample | None] = read_cpu, set_threads: Callable[[int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= low <= high:
            raise ValueError(f"thread range {low}..{high}: need 1 <= low <= high")
        self.low, self.high, self.interval_s = low, high, interval_s
        self.cores = cores or os.cpu_count() or 1
        self.read, self.clock = read, clock
        self._set = set_threads or _torch_set_threads
        self.threads = low
        self.changes: list[tuple[float, int]] = []
        self._sample: CpuSample | None = None
        self._checked = -float("inf")
        self._pending: int | None = None

    def target(self, free: float) -> int:
        """Threads for ``free`` cores: whole cores, with :data:`HEADROOM`, within ``low..high``."""
        return max(self.low, min(self.high, int(free + HEADROOM)))

    def poll(self) -> int:
        """Measure if a window has passed, change the thread count when two windows agree; the current count."""
        now = self.clock()
        if now - self._checked < self.interval_s:
            return self.threads
        self._checked = now
        sample = self.read()
        if sample is None:
            return self.threads
        if self._sample is not None:
            want = self.target(free_cores(self._sample, sample, self.cores))
            if want == self.threads:
                self._pending = None
            elif want == self._pending:
                self._set(want)
                log.info("training threads %d -> %d (the other processes leave them free)", self.threads, want)
                self.threads, self._pending = want, None
                self.changes.append((now, want))
            else:
                self._pending = want
        self._sample = sample
        return self.threads

    def start(self) -> None:
        """Set ``low`` threads and take the first sample (the training loop calls it before the first step)."""
        self._set(self.threads)
        self._sample, self._checked = self.read(), self.clock()


def _torch_set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def governor_from_env(environ: dict[str, str] | None = None) -> ThreadGovernor | None:
    """The governor :data:`ENV_VARIABLE` asks for (``"low:high"``), or ``None`` when it is unset or ``/proc/stat``
    cannot be read."""
    value = (os.environ if environ is None else environ).get(ENV_VARIABLE, "")
    if not value:
        return None
    try:
        low, high = (int(v) for v in value.split(":"))
    except ValueError:
        log.warning("%s=%r is not low:high; threads stay fixed", ENV_VARIABLE, value)
        return None
    if read_cpu() is None:
        return None
    return ThreadGovernor(low, high)
