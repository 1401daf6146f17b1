"""Running one job's steps in child processes: lower priority, bounded threads, progress, log tail, cancel.

Each step runs as ``python -c LAUNCH NICE MODULE ARGS...``: the launcher lowers its own priority by ``NICE`` (a
thread created later inherits it) and runs ``MODULE`` as ``__main__``, so nothing of the job runs in the server
process, and a crash of the job is only a failed job. The child is the leader of a new process group: cancel sends
SIGTERM to the group (the child and anything it started), then SIGKILL after the grace period. Its threads are
bounded by ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` (torch reads them at start) from ``Settings.job_threads``; a
training step grows to ``Settings.job_threads_max`` while the other processes leave cores free. The
server's settings reach it as ``VISIONLOOP_*`` variables, with ``VISIONLOOP_PROGRESS_FILE`` naming the JSON-lines file
its progress hooks append to (:mod:`visionloop.core.progress`). stderr goes to ``log.txt`` in the job folder, stdout
(the command's ``--json`` result) of the first step to ``stdout.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from visionloop.core.settings import Settings
from visionloop.serving.jobs.kinds import Step
from visionloop.storage.jobs import JobState

__all__ = ["LAUNCH", "Outcome", "ProgressReader", "StopRequest", "child_env", "error_of", "log_tail", "run_steps",
           "without_root"]

LAUNCH = ("import os, runpy, sys; os.nice(int(sys.argv[1])); module = sys.argv[2]; "
          "sys.argv = [module, *sys.argv[3:]]; runpy.run_module(module, run_name='__main__', alter_sys=True)")
"""The child's program: ``python -c LAUNCH NICE MODULE ARGS...``."""
POLL_S = 0.25
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ADAPTIVE_THREADS = "VISIONLOOP_ADAPTIVE_THREADS"
"""``low:high``: the thread range a training job follows (``visionloop.training.threads.ENV_VARIABLE``; named here
because the server never imports the trainers)."""


@dataclass
class StopRequest:
    """Set by a cancel (``reason`` cancelled) or a server shutdown (``reason`` interrupted)."""

    event: threading.Event = field(default_factory=threading.Event)
    reason: JobState = JobState.CANCELLED
    by: str = ""

    def set(self, reason: JobState, by: str = "") -> None:
        self.reason, self.by = reason, by
        self.event.set()


@dataclass
class Outcome:
    state: JobState
    result: dict[str, Any] | None
    error: str | None
    log: str
    progress: dict[str, Any]


class ProgressReader:
    """Reads the records a child appended to its progress file since the last call; ``current`` merges them (the
    latest value of each field wins, so ``run`` stays once known)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.current: dict[str, Any] = {}

    def poll(self) -> bool:
        """True when new records arrived."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return False
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        changed = False
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self.current.update(record)
                changed = True
        return changed


def child_env(settings: Settings, progress_path: Path) -> dict[str, str]:
    """The server's environment and settings (``VISIONLOOP_*``, secrets left out), bounded threads and the progress
    file."""
    env = dict(os.environ)
    for name in type(settings).model_fields:
        key, value = f"VISIONLOOP_{name.upper()}", getattr(settings, name)
        if isinstance(value, SecretStr):
            env.pop(key, None)  # a secret stays in the server: a job never needs one
        elif name == "progress_file":
            continue  # the job's own, below
        elif value is None:
            env.pop(key, None)
        else:
            env[key] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    env["VISIONLOOP_PROGRESS_FILE"] = str(progress_path)
    low = max(1, settings.job_threads)
    for var in THREAD_VARIABLES:
        env[var] = str(low)
    env.pop(ADAPTIVE_THREADS, None)
    if settings.job_threads_max > low:  # training grows to the cores others leave free (visionloop.training.threads)
        env[ADAPTIVE_THREADS] = f"{low}:{settings.job_threads_max}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def log_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of ``path`` (from a line start when cut), '' when there is none."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read()
    except FileNotFoundError:
        return ""
    if size > limit and b"\n" in data:
        data = data[data.index(b"\n") + 1:]
    return data.decode("utf-8", errors="replace")


def without_root(text: str, root: Path) -> str:
    """``text`` with ``root/`` (as given and resolved) removed from the paths it names."""
    for prefix in {f"{root}{os.sep}", f"{root.resolve()}{os.sep}"}:
        text = text.replace(prefix, "")
    return text


def error_of(log: str, returncode: int) -> str:
    """What went wrong, for people: the command's one-line ``error:`` message, else the last lines of the log."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    tail = " | ".join(lines[-3:])
    return f"the command ended with exit status {returncode}" + (f": {tail}" if tail else "")


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after ``grace_s`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_steps(
    steps: list[Step], *, folder: Path, cwd: Path, settings: Settings, stop: StopRequest,
    on_start: Callable[[int], None], on_progress: Callable[[dict[str, Any], str], None],
) -> Outcome:
    """Run ``steps`` one after the other; stop at the first that fails. ``on_start(pid)`` when a step's process
    starts; ``on_progress(progress, log_tail)`` when its progress changes (and now and then for the log)."""
    folder.mkdir(parents=True, exist_ok=True)
    reader = ProgressReader(folder / "progress.jsonl")
    log_path, out_path = folder / "log.txt", folder / "stdout.json"
    env = child_env(settings, reader.path)

    def tail() -> str:  # paths inside the project shown relative to it: the server's disk is nobody's business
        return without_root(log_tail(log_path, settings.job_log_bytes), cwd)
    for index, step in enumerate(steps):
        argv = [sys.executable, "-c", LAUNCH, str(settings.job_nice), step.module, *step.args]
        with log_path.open("ab") as log, (out_path.open("wb") if index == 0 else log) as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log, env=env, cwd=cwd,
                                    start_new_session=True)
        on_start(proc.pid)
        ticks = 0
        while True:
            try:
                code = proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if stop.event.is_set():
                _stop_group(proc, settings.job_cancel_grace_s)
                reader.poll()
                by = f" by {stop.by}" if stop.by else ""
                what = "cancelled" if stop.reason is JobState.CANCELLED else "stopped with the server"
                return Outcome(stop.reason, None, f"{what}{by}", tail(), reader.current)
            ticks += 1
            if reader.poll() or ticks % 20 == 0:
                on_progress(reader.current, tail())
        reader.poll()
        if code != 0:
            text = tail()
            return Outcome(JobState.FAILED, None, error_of(text, code), text, reader.current)
    try:
        printed = json.loads(out_path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        printed = None
    result = printed if isinstance(printed, dict) else {"output": printed}
    return Outcome(JobState.DONE, result, None, tail(),
                   {**reader.current, "fraction": 1.0, "message": "done"})
