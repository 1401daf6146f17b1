"""JPEG thumbnails of project images, made once and cached in the project under ``.cache/thumbs/<size>/<sha>.jpg``.

Blobs never change, so a cached thumbnail never goes stale; it is written to a temporary file and renamed into
place, so a reader never sees half a file, and two requests racing to make the same one both succeed.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from visionloop.core.imageio import decode
from visionloop.storage.project import Project

__all__ = [
    "MAX_THUMBNAIL", "MIN_THUMBNAIL", "THUMBNAIL_QUALITY", "make_thumbnail", "render_thumbnail", "thumbnail_path",
]

MIN_THUMBNAIL = 16
MAX_THUMBNAIL = 1024
THUMBNAIL_QUALITY = 85


def thumbnail_path(project: Project, sha256: str, size: int) -> Path:
    return project.root / ".cache" / "thumbs" / str(size) / f"{sha256}.jpg"


def render_thumbnail(data: bytes, size: int, *, max_pixels: int) -> bytes:
    """JPEG bytes of the image fitted inside ``size`` x ``size`` pixels (never enlarged), EXIF orientation applied.

    JPEGs are decoded at a reduced scale (``draft``) when the image is much larger than the thumbnail.
    """
    im = decode(data, max_pixels=max_pixels, draft=(size, size))
    im.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return buf.getvalue()


def make_thumbnail(project: Project, sha256: str, size: int) -> Path:
    """Path of the cached thumbnail of blob ``sha256``, made now if missing."""
    dest = thumbnail_path(project, sha256, size)
    if dest.is_file():
        return dest
    data = render_thumbnail(project.blobs.read(sha256), size, max_pixels=project.settings.max_image_pixels)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
