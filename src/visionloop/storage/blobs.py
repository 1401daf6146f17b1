"""Content-addressed blob store: ``<root>/ab/cdef...`` by sha256, written once by atomic rename, never modified.

Local directories use the OS directly (fast path); any other fsspec URL (``s3://``, ``gs://``, ``memory://``)
goes through fsspec, whose object stores write whole objects atomically. ``options`` are fsspec storage options
(for S3: ``endpoint_url``, ``client_kwargs``...; credentials come from the environment as the library reads them).

Readers that decode images call :meth:`BlobStore.source`, which works on every store: the local file, or the bytes
of a remote blob. Blobs never change, so remote reads are kept in a bounded in-memory cache (``cache_bytes``): a
training epoch after the first reads nothing from the network while the data fits.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import fsspec

from visionloop.core.errors import VisionloopError

CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, url: str | Path, *, options: dict[str, Any] | None = None,
                 cache_bytes: int = 512 << 20) -> None:
        url = str(url)
        self.url = url
        self.local = "://" not in url or url.startswith("file://")
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        if self.local:
            self.root = Path(url.removeprefix("file://"))
            self.root.mkdir(parents=True, exist_ok=True)
            self.fs = None
        else:
            self.fs, path = fsspec.core.url_to_fs(url, **(options or {}))
            self.root = Path(path)

    def _key(self, sha: str) -> str:
        return f"{sha[:2]}/{sha[2:]}"

    def path(self, sha: str) -> Path:
        """Local file of a blob (local stores only; :meth:`source` works on every store)."""
        if not self.local:
            raise VisionloopError(f"blob store {self.url} is not on local disk; read blobs with source() or read()")
        return self.root / self._key(sha)

    def source(self, sha: str) -> Path | bytes:
        """What an image decoder reads: the blob's local file, or the bytes of a remote blob (cached, bounded)."""
        return self.path(sha) if self.local else self.read(sha)

    def exists(self, sha: str) -> bool:
        if self.local:
            return self.path(sha).exists()
        return self.fs.exists(f"{self.root}/{self._key(sha)}")

    def delete(self, sha: str) -> bool:
        """Remove a blob (when no image of the project uses it any more); False when it was not there."""
        with self._lock:
            if sha in self._cache:
                self._cached -= len(self._cache.pop(sha))
        if self.local:
            try:
                self.path(sha).unlink()
            except FileNotFoundError:
                return False
            return True
        key = f"{self.root}/{self._key(sha)}"
        if not self.fs.exists(key):
            return False
        self.fs.rm(key)
        return True

    def put(self, data: bytes, sha: str | None = None) -> str:
        """Store ``data``; returns its sha256. Writing the same content again does nothing."""
        sha = sha or sha256_bytes(data)
        if self.exists(sha):
            return sha
        if self.local:
            dest = self.path(sha)
            dest.parent.mkdir(exist_ok=True)
            tmp = dest.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{sha[:16]}"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        else:
            self.fs.pipe_file(f"{self.root}/{self._key(sha)}", data)
        return sha

    def read(self, sha: str) -> bytes:
        if self.local:
            return self.path(sha).read_bytes()
        with self._lock:
            hit = self._cache.get(sha)
            if hit is not None:
                self._cache.move_to_end(sha)
                return hit
        data = self.fs.cat_file(f"{self.root}/{self._key(sha)}")
        if len(data) <= self.cache_bytes:
            with self._lock:
                if sha not in self._cache:
                    self._cache[sha] = data
                    self._cached += len(data)
                while self._cached > self.cache_bytes:
                    _, old = self._cache.popitem(last=False)
                    self._cached -= len(old)
        return data

    def local_path(self, sha: str, cache_dir: Path) -> Path:
        """A local file with the blob's content: the blob itself, or a cached copy for remote stores."""
        if self.local:
            return self.path(sha)
        dest = cache_dir / self._key(sha)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            tmp.write_bytes(self.read(sha))
            os.replace(tmp, dest)
        return dest
