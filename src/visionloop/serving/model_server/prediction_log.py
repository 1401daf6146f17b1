"""Sampled logging of production predictions for the review loop.

A sampled request writes its image once under ``DIR/images/<sha256>.<ext>`` and one JSON line to
``DIR/predictions.jsonl``: time, model, package sha256, image sha256, size and the prediction. Writes happen on one
background thread so requests never wait for the disk.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["PredictionLogger"]

_EXT = {b"\xff\xd8": "jpg", b"\x89P": "png", b"GI": "gif", b"BM": "bmp", b"RI": "webp", b"II": "tif", b"MM": "tif"}


class PredictionLogger:
    """Log a ``rate`` fraction (0..1) of predictions under ``directory``; ``seed`` makes sampling reproducible."""

    def __init__(self, directory: str | Path, *, rate: float, seed: int | None = None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"log rate must be within 0..1, got {rate}")
        self.directory, self.rate = Path(directory), rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="visionloop-predlog")
        self.logged = 0

    def maybe_log(self, *, model: str, model_sha256: str | None, data: bytes, prediction: dict[str, Any]) -> bool:
        with self._lock:
            if self.rate <= 0.0 or self._rng.random() >= self.rate:
                return False
        self._executor.submit(self._write, model, model_sha256, data, prediction, time.time())
        return True

    def _write(self, model: str, model_sha256: str | None, data: bytes, prediction: dict[str, Any], t: float) -> None:
        sha = hashlib.sha256(data).hexdigest()
        images = self.directory / "images"
        images.mkdir(parents=True, exist_ok=True)
        path = images / f"{sha}.{_EXT.get(data[:2], 'bin')}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        line = {"time": t, "model": model, "model_sha256": model_sha256, "image_sha256": sha,
                "image": str(path.relative_to(self.directory)), "prediction": prediction}
        with (self.directory / "predictions.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")
        with self._lock:
            self.logged += 1

    def flush(self) -> None:
        """Wait for pending writes."""
        self._executor.submit(lambda: None).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
