"""Decoded (and, for large images, downsized) images kept in memory, so decoding is paid once per run, not per epoch.

Two kinds of entries, both uint8 (H, W, 3):

* ``"train"``: the decoded image shrunk so its shorter side is at most ``train_side`` pixels (JPEG draft decoding
  makes the shrink nearly free); random crops and resizes then start from it. Images already small are kept as they
  are.
* ``"eval"``: the output of ``Preprocess.geometry`` on the full decoded image, i.e. exactly what evaluation and the
  exported model see before normalisation; caching it changes no number.

The cache holds up to ``max_bytes`` (default 1.5 GiB); beyond that, images are decoded every time (still correct).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionloop.core.imageio import decode
from visionloop.core.preprocess import Preprocess

__all__ = ["ImageCache"]


class ImageCache:
    """``get(sha256, kind)`` -> uint8 (H, W, 3). ``blobs`` is the project's BlobStore (``project.blobs``)."""

    def __init__(self, blobs: Any, *, preprocess: Preprocess, train_side: int | None = None,
                 max_bytes: int = 1536 << 20) -> None:
        self.blobs, self.preprocess = blobs, preprocess
        self.train_side = train_side or int(round(max(preprocess.size) * 1.25))
        self.max_bytes = max_bytes
        self._data: dict[tuple[str, str], np.ndarray] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _source(self, sha: str) -> bytes | Path:
        return self.blobs.source(sha)

    def _load(self, sha: str, kind: str) -> np.ndarray:
        if kind == "eval":
            im, _ = self.preprocess.geometry(self.preprocess.levels(decode(self._source(sha))))
            return np.asarray(im.convert("RGB"))
        side = self.train_side
        im = decode(self._source(sha), draft=(side, side))
        w, h = im.size
        if min(w, h) > side:
            s = side / min(w, h)
            im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
        return np.asarray(im)

    def get(self, sha: str, kind: str = "train") -> np.ndarray:
        key = (sha, kind)
        hit = self._data.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        arr = self._load(sha, kind)
        with self._lock:
            if self._bytes + arr.nbytes <= self.max_bytes:
                self._data[key] = arr
                self._bytes += arr.nbytes
        return arr

    @property
    def nbytes(self) -> int:
        return self._bytes
