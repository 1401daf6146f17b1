"""Reading images the same way everywhere: EXIF orientation applied once, any mode converted to RGB.

``probe`` is the cheap check at ingest (header, size limits, truncation); ``decode`` is the full decode used by
training, inference and thumbnails.

The decompression-bomb guard is ours: ``max_pixels`` is allowed up to and including the limit. A project sets it
with ``max_image_pixels`` in its ``visionloop.toml`` (a microscopy or aerial project may accept 16000x12000 images),
else ``VISIONLOOP_MAX_IMAGE_PIXELS``, else 100 Mpx. Pillow's own thresholds (a warning at about 89.5 Mpx, a hard
``DecompressionBombError`` at about 179 Mpx) are not ours: past Pillow's hard limit, an image the project's limit
allows is read with libvips (:mod:`visionloop.core.vips_io`), which never needs Pillow's global limit changed.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from visionloop.core.errors import ImageError, ImageTooLargeError

_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}


@dataclass(frozen=True)
class ImageInfo:
    width: int
    """Pixels after EXIF orientation."""
    height: int
    format: str
    mode: str
    orientation: int


def _check_complete(data: bytes, fmt: str, name: str) -> None:
    tail = data[-64:].rstrip(b"\x00\r\n ")
    if fmt == "jpeg" and not tail.endswith(b"\xff\xd9"):
        raise ImageError(name, "truncated JPEG (no end-of-image marker); re-export or re-download the file")
    if fmt == "png" and b"IEND" not in data[-32:]:
        raise ImageError(name, "truncated PNG (no IEND chunk); re-export or re-download the file")


def check_pixels(width: int, height: int, max_pixels: int, *, name: str = "<bytes>") -> None:
    """The decompression-bomb guard: :class:`ImageTooLargeError` (saying how to raise the limit) above ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageTooLargeError(name, width=width, height=height, max_pixels=max_pixels)


def probe(data: bytes, *, name: str = "<bytes>", max_pixels: int = 100_000_000) -> ImageInfo:
    """Read the header: format, size after EXIF orientation; refuse bombs, non-images and truncated files."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own max_pixels check follows
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            fmt = (im.format or "").lower()
            mode = im.mode
            orientation = 1
            # a PNG's getexif() decodes the whole image to look for an eXIf chunk after the pixels; the header's
            # (where writers put it) is enough for a probe
            if fmt in {"jpeg", "tiff", "webp", "mpo"} or (fmt == "png" and "exif" in im.info):
                orientation = int(im.getexif().get(_ORIENTATION_TAG, 1) or 1)
    except UnidentifiedImageError as e:
        raise ImageError(name, "not an image (or a format Pillow cannot read)") from e
    except Image.DecompressionBombError:  # past Pillow's hard limit: the header from libvips, our limit applies
        from visionloop.core.vips_io import read_header  # libvips only for such images: the runtime needs Pillow only

        vh = read_header(data, name=name)
        check_pixels(vh.width, vh.height, max_pixels, name=name)
        _check_complete(data, vh.format, name)
        return ImageInfo(width=vh.width, height=vh.height, format=vh.format, mode=vh.mode, orientation=vh.orientation)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(name, f"corrupt image header: {e}") from e
    if w <= 0 or h <= 0:
        raise ImageError(name, f"image has no pixels ({w}x{h})")
    check_pixels(w, h, max_pixels, name=name)
    _check_complete(data, fmt, name)
    if orientation in _SWAPS_AXES:
        w, h = h, w
    return ImageInfo(width=w, height=h, format=fmt or "unknown", mode=mode, orientation=orientation)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB: 16-bit and float scaled to 0..255, palette/LA/RGBA/CMYK/grayscale converted.

    Transparent pixels become white, as image viewers show them.
    """
    if im.mode == "RGB":
        return im
    if im.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return Image.fromarray(np.round((arr - lo) * scale).astype(np.uint8), "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in {"RGBA", "LA", "PA"}:
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im.convert("RGB")


def decode(source: bytes | str | Path, *, max_pixels: int = 100_000_000, draft: tuple[int, int] | None = None) -> Image.Image:
    """Full decode to an RGB PIL image with EXIF orientation applied; :class:`ImageTooLargeError` past ``max_pixels``.

    ``draft=(w, h)`` lets JPEG decoding shrink by a power of two to at least that size (fast thumbnails/hashes).
    """
    name = str(source) if not isinstance(source, bytes) else "<bytes>"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own max_pixels check follows
            im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            check_pixels(im.size[0], im.size[1], max_pixels, name=name)
            if draft is not None and im.format == "JPEG":
                im.draft("RGB", draft)
            im.load()
    except ImageError:
        raise
    except Image.DecompressionBombError:  # past Pillow's hard limit, which the project's own limit may allow
        return _decode_huge(source, name, max_pixels=max_pixels, draft=draft)
    except UnidentifiedImageError as e:
        raise ImageError(name, f"cannot decode: {e}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(name, f"corrupt or truncated image: {e}") from e
    im = ImageOps.exif_transpose(im) or im
    return to_rgb(im)


def _decode_huge(source: bytes | str | Path, name: str, *, max_pixels: int, draft: tuple[int, int] | None) -> Image.Image:
    """An image past Pillow's hard limit, decoded by libvips (reduced by a power of two for ``draft``)."""
    from visionloop.core.vips_io import open_image  # libvips only for such images: the runtime needs Pillow only

    im = open_image(source, name=name)
    check_pixels(im.width, im.height, max_pixels, name=name)
    if draft is not None:
        shrink = 1
        while shrink < 8 and im.width // (shrink * 2) >= draft[0] and im.height // (shrink * 2) >= draft[1]:
            shrink *= 2
        if shrink > 1:
            im = im.shrink(shrink, shrink)
    try:
        return Image.fromarray(im.numpy(), "RGB")
    except Exception as e:  # pyvips.Error while reading the pixels: truncated or corrupt
        raise ImageError(name, f"corrupt or truncated image: {str(e).strip().splitlines()[0]}") from e


def decode_array(source: bytes | str | Path, **kwargs: object) -> np.ndarray:
    """(H, W, 3) uint8 RGB array."""
    return np.asarray(decode(source, **kwargs))  # type: ignore[arg-type]
