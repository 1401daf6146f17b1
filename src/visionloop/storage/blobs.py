"""Content-addressed blob store: ``<root>/ab/cdef...`` by sha256, written once by atomic rename, never modified.

Local directories use the OS directly (fast path); any other fsspec URL (``s3://``, ``gs://``, ``memory://``)
goes through fsspec, whose object stores write whole objects atomically.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import fsspec

CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, url: str | Path) -> None:
        url = str(url)
        self.url = url
        self.local = "://" not in url or url.startswith("file://")
        if self.local:
            self.root = Path(url.removeprefix("file://"))
            self.root.mkdir(parents=True, exist_ok=True)
            self.fs = None
        else:
            self.fs, path = fsspec.core.url_to_fs(url)
            self.root = Path(path)

    def _key(self, sha: str) -> str:
        return f"{sha[:2]}/{sha[2:]}"

    def path(self, sha: str) -> Path:
        """Local file of a blob (local stores only)."""
        if not self.local:
            raise RuntimeError(f"blob store {self.url} is not on local disk; use read() or open()")
        return self.root / self._key(sha)

    def exists(self, sha: str) -> bool:
        if self.local:
            return self.path(sha).exists()
        return self.fs.exists(f"{self.root}/{self._key(sha)}")

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
        return self.fs.cat_file(f"{self.root}/{self._key(sha)}")

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
