"""The loop's state that pages and the API read without training anything: its options (the project's ``[loop]``
table of ``visionloop.toml``), the lock that lets one cycle run at a time, and its history.

Pure of training and evaluation (storage only), so the project API imports it; :mod:`visionloop.active.loop` runs
the cycles.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from visionloop.core.errors import AnnotationValidationError, ConflictError
from visionloop.storage.deployment import read_deployment
from visionloop.storage.loop_cycles import interrupt_running, last_cycle, list_cycles

__all__ = ["CONFIG_TABLE", "LOCK_WAIT_S", "LOOP_DIR", "LoopOptions", "clear_interrupted", "loop_history", "loop_lock",
           "loop_options"]

CONFIG_TABLE = "loop"
"""The ``[loop]`` table of ``visionloop.toml`` holds a project's defaults (``min_new``, ``margin``, ``metric``,
``confidence``, ``resamples``, ``approved_only``, ``every_hours``)."""
LOOP_DIR = "loop"
"""``PROJECT/loop``: the lock and, per cycle, ``<cycle id>/report.html``."""
_LOCK = ".lock"
LOCK_WAIT_S = 5.0
"""How long a cycle waits for the lock (a history request holds it for an instant)."""


@dataclass(frozen=True, kw_only=True)
class LoopOptions:
    """How a cycle runs; the defaults can be set per project in ``visionloop.toml``'s ``[loop]`` table."""

    min_new: int = 50
    """New approved annotations since the champion's version that start a cycle."""
    margin: float = 0.0
    """Promote only when the lower bound of the CI of challenger minus champion is above this."""
    force: bool = False
    trigger: str | None = None
    """What started a forced cycle: ``manual`` (default), ``drift`` or ``schedule``."""
    metric: str | None = None
    """Default per kind of run (:data:`visionloop.active.loop_eval.DEFAULT_METRICS`)."""
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0
    champion: str | None = None
    """The champion run when nothing is deployed (else the deployed package's run is the champion)."""
    approved_only: bool = True
    """Count and add only approved annotations (the champion's version's images stay in any case)."""
    epochs: int | None = None
    """Override the recipe's epochs (short tests)."""
    every_hours: float | None = None
    """A schedule: a cycle is forced when the last one started longer ago than this."""
    author: str = "loop"
    deploy: bool = True
    """False: decide and report, but deploy nothing (a dry run)."""


def loop_options(project: Any, **overrides: Any) -> LoopOptions:
    """The project's ``[loop]`` defaults, then ``overrides`` (None values are ignored)."""
    known = {f.name for f in fields(LoopOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise AnnotationValidationError("loop option", expected=", ".join(sorted(known)), actual=unknown[0])
    values: dict[str, Any] = {}
    try:
        cfg = tomllib.loads((Path(project.root) / "visionloop.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        cfg = {}
    table = cfg.get(CONFIG_TABLE)
    if isinstance(table, dict):
        values.update({k: v for k, v in table.items() if k in known and k not in ("force", "champion", "author")})
    values.update({k: v for k, v in overrides.items() if v is not None})
    options = LoopOptions(**values)
    if options.min_new < 0 or options.resamples < 1 or not 0 < options.confidence < 1:
        raise AnnotationValidationError("loop options", expected="min_new >= 0, resamples >= 1, 0 < confidence < 1",
                                        actual=f"min_new {options.min_new}, resamples {options.resamples}, "
                                               f"confidence {options.confidence}")
    return options


@contextlib.contextmanager
def loop_lock(project: Any, *, wait_s: float = 0.0) -> Iterator[None]:
    """The project's loop lock (``PROJECT/loop/.lock``), waiting up to ``wait_s`` for it; ConflictError when another
    process holds it. The system releases it when the holder dies."""
    folder = Path(project.root) / LOOP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ConflictError("a loop cycle is already running in this project; wait for it to finish or "
                                        "cancel its job (Jobs page)") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def clear_interrupted(project: Any) -> list[int]:
    """Mark ``running`` cycles of dead processes ``failed`` (interrupted) when no cycle holds the lock now."""
    try:
        with loop_lock(project):
            return interrupt_running(project)
    except ConflictError:
        return []


def loop_history(project: Any, *, limit: int = 100) -> dict[str, Any]:
    """The loop's history for people and pages: cycles newest first, the current deployment, the last promotion.
    A cycle left ``running`` by a process that died (a cancelled job) is marked interrupted first."""
    clear_interrupted(project)
    promoted = last_cycle(project)
    deployment = read_deployment(project.root)
    return {"cycles": [c.to_json() for c in list_cycles(project, limit=limit)],
            "deployment": {k: deployment.get(k) for k in ("package", "package_version", "deployed_at",
                                                          "deployed_by", "action")} if deployment else None,
            "last_promotion": promoted.to_json() if promoted else None}
