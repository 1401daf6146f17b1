"""A machine-readable progress stream: JSON lines appended to a file that a supervising process reads.

A background job of the platform server runs a ``visionloop`` command with ``VISIONLOOP_PROGRESS_FILE`` set
(:attr:`visionloop.core.settings.Settings.progress_file`); the training loop's hooks and the importer write here how
far they are, and the server shows it. Each line is one JSON object: ``fraction`` (0..1 or null when unknown),
``message`` (for people) and any fields of the stage (``run`` once a training run's id is known, ``epoch`` ...).
Writes are throttled (at most one every ``min_interval`` seconds unless forced), so a fast loop costs nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

__all__ = ["ProgressFile", "progress_file"]


class ProgressFile:
    """Appends progress records to ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | Path, *, min_interval: float = 0.5) -> None:
        self.path, self.min_interval = Path(path), min_interval
        self._last = float("-inf")

    def write(self, *, fraction: float | None, message: str, force: bool = False, **fields: Any) -> bool:
        """Append one record (``fields`` must be JSON values); False when throttled away."""
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return False
        self._last = now
        record = {"fraction": None if fraction is None else round(min(1.0, max(0.0, fraction)), 4),
                  "message": message, **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")
        return True


def progress_file(path: str | Path | None) -> ProgressFile | None:
    """A :class:`ProgressFile` for ``path`` (the ``progress_file`` setting), or None when it is not set."""
    return ProgressFile(path) if path else None
