"""Reading very large images with libvips (pyvips), which streams: a 16000x12000 JPEG is read strip by strip instead
of being held whole (576 MB as RGB).

Used where Pillow would hold the full image: the tile pyramid of an image larger than 4096 px on a side
(:mod:`visionloop.storage.tiles`), and the header of an image past Pillow's own hard decompression-bomb limit
(about 179 Mpx), which a project may accept by raising its ``max_image_pixels``.

:func:`open_image` gives the same picture as :func:`visionloop.core.imageio.decode`: EXIF orientation applied once,
8-bit RGB (16-bit and float stretched to 0..255, alpha over white, grey and CMYK converted). Nothing is decoded
until pixels are asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyvips

from visionloop.core.errors import ImageError

__all__ = ["VipsHeader", "open_image", "read_header", "uncached"]

_ORIENTATION = "orientation"
_SWAPS_AXES = {5, 6, 7, 8}
_FORMATS = {"jpegload": "jpeg", "pngload": "png", "webpload": "webp", "tiffload": "tiff", "gifload": "gif",
            "heifload": "heif"}


_CACHE_GUARD = threading.Lock()
_uncached_users = 0
_saved_limits: tuple[int, int] = (0, 0)


@contextmanager
def uncached() -> Iterator[None]:
    """libvips' operation cache off while the block runs (it would keep up to 100 MB of a streamed image's buffers
    alive, for nothing: a pyramid's operations never repeat), back to its limits after the last such block."""
    global _uncached_users, _saved_limits
    with _CACHE_GUARD:
        if _uncached_users == 0:
            _saved_limits = (pyvips.cache_get_max(), pyvips.cache_get_max_mem())
            pyvips.cache_set_max(0)
            pyvips.cache_set_max_mem(0)
        _uncached_users += 1
    try:
        yield
    finally:
        with _CACHE_GUARD:
            _uncached_users -= 1
            if _uncached_users == 0:
                pyvips.cache_set_max(_saved_limits[0])
                pyvips.cache_set_max_mem(_saved_limits[1])


@dataclass(frozen=True)
class VipsHeader:
    width: int
    """Pixels after EXIF orientation."""
    height: int
    format: str
    mode: str
    """The Pillow mode closest to the stored pixels (``RGB``, ``L``, ``RGBA``, ``I;16``...)."""
    orientation: int


def _load(source: bytes | str | Path, name: str, *, access: str) -> pyvips.Image:
    try:
        if isinstance(source, bytes):
            return pyvips.Image.new_from_buffer(source, "", access=access, fail_on="error")
        return pyvips.Image.new_from_file(str(source), access=access, fail_on="error")
    except pyvips.Error as e:
        raise ImageError(name, f"not an image libvips can read ({_first_line(e)})") from e


def _first_line(e: pyvips.Error) -> str:
    return (str(e.message).strip().splitlines() or ["unknown error"])[0]


def _orientation(im: pyvips.Image) -> int:
    if _ORIENTATION not in im.get_fields():
        return 1
    value = int(im.get(_ORIENTATION) or 1)
    return value if 1 <= value <= 8 else 1


def _mode(im: pyvips.Image) -> str:
    colour = im.bands - (1 if im.hasalpha() else 0)
    if im.format in {"ushort", "short"} and colour == 1 and not im.hasalpha():
        return "I;16"
    if im.format in {"float", "double"} and colour == 1:
        return "F"
    if im.interpretation == "cmyk":
        return "CMYK"
    base = "L" if colour == 1 else "RGB"
    return base + ("A" if im.hasalpha() else "")


def read_header(data: bytes, *, name: str = "<bytes>") -> VipsHeader:
    """Size (after EXIF orientation), format, mode and orientation from the header; no pixel is decoded."""
    im = _load(data, name, access="sequential")
    loader = str(im.get("vips-loader")) if "vips-loader" in im.get_fields() else ""
    fmt = next((v for k, v in _FORMATS.items() if loader.startswith(k)), loader.removesuffix("_buffer") or "unknown")
    orientation = _orientation(im)
    w, h = (im.height, im.width) if orientation in _SWAPS_AXES else (im.width, im.height)
    return VipsHeader(width=w, height=h, format=fmt, mode=_mode(im), orientation=orientation)


def _flatten(im: pyvips.Image) -> pyvips.Image:
    """Alpha over white, as image viewers show transparent pixels."""
    white = 65535 if im.format in {"ushort", "short"} else 1.0 if im.format in {"float", "double"} else 255
    return im.flatten(background=[white] * (im.bands - 1))


def _to_rgb8(im: pyvips.Image, reopen: pyvips.Image | None) -> pyvips.Image:
    """8-bit sRGB as :func:`visionloop.core.imageio.to_rgb` makes it. ``reopen``: a second, independent view of the
    same pixels, read for the min/max of a 16-bit or float grey image (a sequential image is read once only)."""
    if im.hasalpha():
        im = _flatten(im)
    if im.interpretation == "cmyk" or (im.bands >= 3 and im.interpretation not in {"srgb", "rgb", "rgb16"}):
        im = im.colourspace("srgb") if im.interpretation == "cmyk" else im.extract_band(0, n=3)
    if im.format != "uchar":
        if im.bands == 1 or im.format in {"float", "double"}:
            stats = (reopen if reopen is not None else im).stats()
            lo, hi = stats(0, 0)[0], stats(1, 0)[0]
            scale = 255.0 / (hi - lo) if hi > lo else 0.0
            im = ((im - lo) * scale).rint().cast("uchar")
        else:  # 16-bit colour: the top byte, as Pillow reads it
            im = (im >> 8).cast("uchar")
    if im.bands == 1:
        im = im.bandjoin([im, im])
    elif im.bands > 3:
        im = im.extract_band(0, n=3)
    return im.copy(interpretation="srgb")


def open_image(source: bytes | str | Path, *, name: str | None = None) -> pyvips.Image:
    """The image as lazy 8-bit RGB with EXIF orientation applied; pixels are decoded as they are read.

    Read it once, from top to bottom (sequential access), unless the image is rotated or flipped by its EXIF
    orientation: then libvips reads it in random order (spilling a large image to a temporary file, not memory).
    """
    name = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    probe = _load(source, name, access="sequential")
    oriented = _orientation(probe) != 1
    access = "random" if oriented else "sequential"
    im = _load(source, name, access=access).autorot() if oriented else probe
    needs_range = im.format != "uchar" and (im.bands - (1 if im.hasalpha() else 0) == 1
                                            or im.format in {"float", "double"})
    reopen = _load(source, name, access="sequential") if needs_range else None
    if reopen is not None and reopen.hasalpha():
        reopen = _flatten(reopen)
    return _to_rgb8(im, reopen)
