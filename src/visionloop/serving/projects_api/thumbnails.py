"""JPEG thumbnails of project images at a few fixed sizes, cached on disk under ``.cache/thumbs/<size>/<sha>.jpg``
within a byte budget per project. An image larger than 4096 px on a side is thumbnailed from a small level of its tile
pyramid (built first when it is missing), never decoded whole.

Sizes are ``THUMBNAIL_SIZES`` only (other requests snap to the next one up), so one image has at most four cached
thumbnails. Blobs never change, so a cached thumbnail never goes stale; it is written to a temporary file and renamed
into place, so a reader never sees half a file, and two requests racing to make the same one both succeed. When the
cache passes its budget the least recently used thumbnails are removed until it is back under 80 % of it.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from pathlib import Path

from PIL import Image

from visionloop.core.errors import VisionloopError
from visionloop.core.imageio import decode, probe
from visionloop.storage.project import Project
from visionloop.storage.tiles import PyramidInfo, TileStore, needs_pyramid

__all__ = [
    "MAX_THUMBNAIL", "THUMBNAIL_QUALITY", "THUMBNAIL_SIZES", "ThumbnailCache", "render_thumbnail", "snap_size",
]

THUMBNAIL_SIZES = (64, 128, 256, 512)
MAX_THUMBNAIL = THUMBNAIL_SIZES[-1]
THUMBNAIL_QUALITY = 85
_PRUNE_TO = 0.8


def snap_size(size: int) -> int:
    """The smallest of ``THUMBNAIL_SIZES`` that is at least ``size``."""
    for s in THUMBNAIL_SIZES:
        if size <= s:
            return s
    raise VisionloopError(f"thumbnail size {size} is above the largest, {MAX_THUMBNAIL}; choose one of "
                          f"{', '.join(map(str, THUMBNAIL_SIZES))}")


def render_thumbnail(data: bytes, size: int, *, max_pixels: int) -> bytes:
    """JPEG bytes of the image fitted inside ``size`` x ``size`` pixels (never enlarged), EXIF orientation applied.

    JPEGs are decoded at a reduced scale (``draft``) when the image is much larger than the thumbnail.
    """
    return _jpeg_thumbnail(decode(data, max_pixels=max_pixels, draft=(size, size)), size)


def _jpeg_thumbnail(im: Image.Image, size: int) -> bytes:
    im.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return buf.getvalue()


class ThumbnailCache:
    """The thumbnails of one project under ``project.root/.cache/thumbs``, at most ``max_bytes`` on disk."""

    def __init__(self, project: Project, *, max_bytes: int) -> None:
        if max_bytes < 1:
            raise VisionloopError(f"thumbnail_cache_bytes must be at least 1, got {max_bytes}")
        self.project, self.max_bytes = project, max_bytes
        self.root = project.root / ".cache" / "thumbs"
        self._lock = threading.Lock()
        self._total: int | None = None  # bytes on disk, counted at first write, kept exact by each prune

    def path(self, sha256: str, size: int) -> Path:
        return self.root / str(size) / f"{sha256}.jpg"

    def get(self, sha256: str, size: int) -> bytes:
        """JPEG bytes of blob ``sha256``'s thumbnail at ``size`` (snapped), from the cache or made now.

        Raises FileNotFoundError when the blob is missing, ImageError when it does not decode.
        """
        dest = self.path(sha256, snap_size(size))
        try:
            data = dest.read_bytes()
            os.utime(dest)  # recently used: pruned last
            return data
        except FileNotFoundError:  # not made yet, or pruned meanwhile
            pass
        tiles = TileStore.of(self.project)
        pyramid = tiles.info(sha256)
        if pyramid is None:
            blob = self.project.blobs.read(sha256)
            info = probe(blob, max_pixels=self.project.settings.max_image_pixels)
            if not needs_pyramid(info.width, info.height):
                data = render_thumbnail(blob, snap_size(size), max_pixels=self.project.settings.max_image_pixels)
                self._store(dest, data)
                return data
            tiles.ensure(sha256, lambda: blob)  # a large image imported before pyramids: its pyramid first
            pyramid = PyramidInfo(info.width, info.height)
        # a large image: from a small level of its pyramid, never decoded whole
        data = _jpeg_thumbnail(tiles.preview(sha256, pyramid, snap_size(size)), snap_size(size))
        self._store(dest, data)
        return data

    def disk_bytes(self) -> int:
        return sum(size for _, size, _ in self._files())

    def _files(self) -> list[tuple[Path, int, float]]:
        out = []
        for size in THUMBNAIL_SIZES:
            try:
                entries = list(os.scandir(self.root / str(size)))
            except FileNotFoundError:
                continue
            for e in entries:
                if e.name.startswith(".tmp-"):  # being written
                    continue
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                out.append((Path(e.path), st.st_size, st.st_mtime))
        return out

    def _store(self, dest: Path, data: bytes) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".jpg")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self._total = (self.disk_bytes() if self._total is None else self._total + len(data))
            if self._total > self.max_bytes:
                self._prune()

    def _prune(self) -> None:
        files = sorted(self._files(), key=lambda f: f[2])  # least recently used first
        total = sum(size for _, size, _ in files)
        for path, size, _ in files:
            if total <= self.max_bytes * _PRUNE_TO:
                break
            path.unlink(missing_ok=True)
            total -= size
        self._total = total
