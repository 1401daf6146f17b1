"""Sampled logging of production predictions for the review loop, in bounded memory.

A sampled request writes its image once under ``DIR/images/<sha256>.<ext>`` and one JSON line to
``DIR/predictions.jsonl``: time, model, package sha256, image sha256, size and the prediction. One background thread
writes; requests only hand it their bytes through a queue bounded in entries (``max_pending``) and in bytes
(``max_pending_bytes``). When the disk cannot keep up, a sample that does not fit is dropped and counted
(``dropped``, exposed in the server's metrics): a prediction never waits for the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MAX_PENDING", "DEFAULT_MAX_PENDING_BYTES", "PredictionLogger"]

DEFAULT_MAX_PENDING = 256
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024

_EXT = {b"\xff\xd8": "jpg", b"\x89P": "png", b"GI": "gif", b"BM": "bmp", b"RI": "webp", b"II": "tif", b"MM": "tif"}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Sample:
    model: str
    model_sha256: str | None
    data: bytes
    prediction: dict[str, Any]
    time: float


class PredictionLogger:
    """Log a ``rate`` fraction (0..1) of predictions under ``directory``; ``seed`` makes sampling reproducible.

    Counters: ``logged`` (written), ``dropped`` (sampled but the queue was full), ``failed`` (the write failed).
    """

    def __init__(self, directory: str | Path, *, rate: float, seed: int | None = None,
                 max_pending: int = DEFAULT_MAX_PENDING, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"log rate must be within 0..1, got {rate}")
        if max_pending < 1 or max_pending_bytes < 1:
            raise ValueError(f"max_pending and max_pending_bytes must be at least 1, got {max_pending}, "
                             f"{max_pending_bytes}")
        self.directory, self.rate = Path(directory), rate
        self.max_pending, self.max_pending_bytes = max_pending, max_pending_bytes
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Sample | None] = queue.Queue(maxsize=max_pending)
        self.pending_bytes = 0
        self.logged = self.dropped = self.failed = 0
        self._thread = threading.Thread(target=self._run, name="visionloop-predlog", daemon=True)
        self._thread.start()

    def maybe_log(self, *, model: str, model_sha256: str | None, data: bytes, prediction: dict[str, Any]) -> bool:
        """Sample this prediction; True when it was queued for writing. Never blocks on the disk."""
        with self._lock:
            if self.rate <= 0.0 or self._rng.random() >= self.rate:
                return False
            if self.pending_bytes + len(data) > self.max_pending_bytes:
                self.dropped += 1
                return False
            try:
                self._queue.put_nowait(_Sample(model, model_sha256, data, prediction, time.time()))
            except queue.Full:
                self.dropped += 1
                return False
            self.pending_bytes += len(data)
        return True

    def _run(self) -> None:
        while (sample := self._queue.get()) is not None:
            try:
                self._write(sample)
                ok = True
            except Exception as e:  # noqa: BLE001 - a full disk or an odd prediction must not stop the writer
                _log.warning("prediction log: cannot write under %s: %s", self.directory, e)
                ok = False
            with self._lock:
                self.pending_bytes -= len(sample.data)
                if ok:
                    self.logged += 1
                else:
                    self.failed += 1
            self._queue.task_done()
        self._queue.task_done()

    def _write(self, sample: _Sample) -> None:
        sha = hashlib.sha256(sample.data).hexdigest()
        images = self.directory / "images"
        images.mkdir(parents=True, exist_ok=True)
        path = images / f"{sha}.{_EXT.get(sample.data[:2], 'bin')}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(sample.data)
            tmp.replace(path)
        line = {"time": sample.time, "model": sample.model, "model_sha256": sample.model_sha256,
                "image_sha256": sha, "image": str(path.relative_to(self.directory)), "prediction": sample.prediction}
        with (self.directory / "predictions.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")

    def flush(self) -> None:
        """Wait until every queued sample is written (or has failed)."""
        self._queue.join()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
