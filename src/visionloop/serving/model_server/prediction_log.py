"""Sampled logging of production predictions for the review loop, in bounded memory.

A sampled request writes its image once under ``DIR/images/<sha256>.<ext>`` and one JSON line to
``DIR/predictions.jsonl``: time, model, package sha256, image sha256, size and the prediction. One background thread
writes; requests only hand it their bytes through a queue bounded in entries (``max_pending``) and in bytes
(``max_pending_bytes``). When the disk cannot keep up, a sample that does not fit is dropped and counted
(``dropped``, exposed in the server's metrics): a prediction never waits for the log.

The hand-off itself, :class:`BoundedHandoff` (a queue bounded in entries and bytes, one worker thread), also carries
the feedback sender's samples (``model_server.feedback``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["DEFAULT_MAX_PENDING", "DEFAULT_MAX_PENDING_BYTES", "BoundedHandoff", "PredictionLogger"]

DEFAULT_MAX_PENDING = 256
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024

_EXT = {b"\xff\xd8": "jpg", b"\x89P": "png", b"GI": "gif", b"BM": "bmp", b"RI": "webp", b"II": "tif", b"MM": "tif"}
_log = logging.getLogger(__name__)
T = TypeVar("T")


class BoundedHandoff(Generic[T]):
    """Hand items to one background worker thread through a queue bounded in entries (``max_pending``) and in bytes
    (``max_pending_bytes``, as the submitter counts them): :meth:`submit` never blocks, it answers False when the
    item does not fit. ``handle(item)`` runs on the worker (an exception counts in ``failed``, the worker goes on);
    ``idle()``, when given, runs on the worker at start and after each item or wait, and answers how many seconds
    until it wants to run again (None: when the next item comes). Counters: ``handled``, ``failed``,
    ``pending_bytes``.
    """

    def __init__(self, handle: Callable[[T], None], *, name: str, max_pending: int, max_pending_bytes: int,
                 idle: Callable[[], float | None] | None = None) -> None:
        if max_pending < 1 or max_pending_bytes < 1:
            raise ValueError(f"max_pending and max_pending_bytes must be at least 1, got {max_pending}, "
                             f"{max_pending_bytes}")
        self.max_pending, self.max_pending_bytes = max_pending, max_pending_bytes
        self._handle, self._idle, self.name = handle, idle, name
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[T, int] | None] = queue.Queue(maxsize=max_pending)
        self.pending_bytes = 0
        self.handled = self.failed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T, nbytes: int) -> bool:
        """Queue ``item`` (counting ``nbytes`` against the byte bound); False when it does not fit."""
        with self._lock:
            if self.pending_bytes + nbytes > self.max_pending_bytes:
                return False
            try:
                self._queue.put_nowait((item, nbytes))
            except queue.Full:
                return False
            self.pending_bytes += nbytes
        return True

    @property
    def pending(self) -> int:
        """Items queued, not yet taken by the worker."""
        return self._queue.qsize()

    def _run(self) -> None:
        wait = self._call_idle()
        while True:
            try:
                entry = self._queue.get(timeout=wait)
            except queue.Empty:
                wait = self._call_idle()
                continue
            if entry is None:
                self._queue.task_done()
                return
            item, nbytes = entry
            try:
                self._handle(item)
                ok = True
            except Exception as e:  # noqa: BLE001 - a full disk or an odd item must not stop the worker
                _log.warning("%s: %s", self.name, e)
                ok = False
            with self._lock:
                self.pending_bytes -= nbytes
                if ok:
                    self.handled += 1
                else:
                    self.failed += 1
            self._queue.task_done()
            wait = self._call_idle()

    def _call_idle(self) -> float | None:
        if self._idle is None:
            return None
        try:
            wait = self._idle()
        except Exception as e:  # noqa: BLE001 - the idle work is retried after a pause, the worker goes on
            _log.warning("%s: %s", self.name, e)
            return 5.0
        return None if wait is None else max(0.0, wait)

    def flush(self) -> None:
        """Wait until every queued item is handled (or has failed)."""
        self._queue.join()

    def close(self) -> None:
        """Handle what is queued, then stop the worker thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


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
        self.directory, self.rate = Path(directory), rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.dropped = 0
        self._writer = BoundedHandoff(self._write, name="visionloop-predlog", max_pending=max_pending,
                                      max_pending_bytes=max_pending_bytes)
        self.max_pending, self.max_pending_bytes = max_pending, max_pending_bytes

    @property
    def logged(self) -> int:
        return self._writer.handled

    @property
    def failed(self) -> int:
        return self._writer.failed

    @property
    def pending_bytes(self) -> int:
        return self._writer.pending_bytes

    def maybe_log(self, *, model: str, model_sha256: str | None, data: bytes, prediction: dict[str, Any]) -> bool:
        """Sample this prediction; True when it was queued for writing. Never blocks on the disk."""
        with self._lock:
            if self.rate <= 0.0 or self._rng.random() >= self.rate:
                return False
            if self._writer.submit(_Sample(model, model_sha256, data, prediction, time.time()), len(data)):
                return True
            self.dropped += 1
        return False

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
        self._writer.flush()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        self._writer.close()
