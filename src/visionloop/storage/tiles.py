"""Tile pyramids of large images, so a 16000x12000 picture opens in a browser like a small one.

An image larger than :data:`TILE_MIN_SIDE` pixels on a side gets a pyramid, built once (at import, by
``visionloop tiles PROJECT``, or on the first tile asked for) and kept under the project:

    tiles/<sha256>/pyramid.json        {"width", "height", "tile_size", "levels", "format", "quality"}
    tiles/<sha256>/<z>/<x>_<y>.webp    level z, column x, row y

Level 0 is the full resolution; level z is the image downsampled by ``2**z`` (``ceil(width / 2**z)`` by
``ceil(height / 2**z)`` pixels, 2x2 means), down to the first level that fits in one tile. Every tile is
``tile_size`` x ``tile_size`` pixels (what a map viewer's XYZ tile grid expects): the tiles at the right and bottom
edges repeat the image's last column and row beyond it, so clip the layer to the image's extent. (Black padding would
bleed into the edge pixels through WebP's chroma subsampling.)

One file per tile rather than one container per image: a tile is served straight from disk (no index to parse,
no handle to keep open), and the whole pyramid appears at once when its finished folder is renamed into place.

Building streams (libvips ``dzsave`` in its Deep Zoom layout over :func:`visionloop.core.vips_io.open_image`, edge
tiles padded afterwards): the image is read from top to bottom once and every level is made from the strips as they
pass, so memory stays a few strips of tiles, not the decoded image (a 16000x12000 RGB image is 549 MiB; the build
takes 142 MiB, the naive full decode and resize per level 1330 MiB: ``benchmarks/tiles.py``). Builds run one at a
time per process. (libvips' Google layout pads every level to a square, which costs a tall image's strips the width of
its height; the Deep Zoom one does not.)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyvips
from PIL import Image
from sqlalchemy import or_, select

from visionloop.core.errors import ImageError, NotFoundError, VisionloopError
from visionloop.core.vips_io import open_image, uncached
from visionloop.storage.models import ImageRow
from visionloop.storage.project import Project

__all__ = [
    "TILES_DIR",
    "TILE_FORMAT",
    "TILE_MIN_SIDE",
    "TILE_QUALITY",
    "TILE_SIZE",
    "PyramidInfo",
    "TileStore",
    "build_missing_pyramids",
    "build_pyramid",
    "needs_pyramid",
    "pyramid_info",
]

TILE_MIN_SIDE = 4096
"""Images with a side longer than this many pixels get a tile pyramid."""
TILE_SIZE = 512
"""Pixels on a tile's side: a full-HD view needs 12 to 20 tiles, a 16000x12000 image has 1,025 in all."""
TILE_FORMAT = "webp"
TILE_QUALITY = 80
"""WebP quality: tiles of a 16000x12000 BCCD mosaic average 14 KB (14 MB in all, for a 25 MB JPEG at quality 90)."""
TILE_EFFORT = 1
"""libwebp's effort (0..6): 1 builds about 3x faster than the default 4, for files about 15 % larger."""
TILES_DIR = "tiles"
_INFO = "pyramid.json"
_PREVIEW_MAX_SIDE = 4096
_BUILD_SLOTS = threading.BoundedSemaphore(1)
_LOCKS_GUARD = threading.Lock()
_LOCKS: dict[Path, threading.Lock] = {}


@dataclass(frozen=True)
class PyramidInfo:
    """The geometry of one image's pyramid (sizes in pixels after EXIF orientation)."""

    width: int
    height: int
    tile_size: int = TILE_SIZE

    @property
    def levels(self) -> int:
        """Number of levels: level ``levels - 1`` is the first that fits in one tile."""
        side, n = max(self.width, self.height), 1
        while side > self.tile_size:
            side, n = math.ceil(side / 2), n + 1
        return n

    def level_size(self, z: int) -> tuple[int, int]:
        """(width, height) of level ``z`` in pixels."""
        return math.ceil(self.width / 2**z), math.ceil(self.height / 2**z)

    def grid(self, z: int) -> tuple[int, int]:
        """(columns, rows) of tiles at level ``z``."""
        w, h = self.level_size(z)
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def tile_count(self) -> int:
        return sum(c * r for c, r in map(self.grid, range(self.levels)))

    def contains(self, z: int, x: int, y: int) -> bool:
        if not 0 <= z < self.levels:
            return False
        cols, rows = self.grid(z)
        return 0 <= x < cols and 0 <= y < rows

    def out_of_range(self, z: int, x: int, y: int) -> str:
        """Why tile (z, x, y) is not in the pyramid, in words (empty when it is)."""
        if not 0 <= z < self.levels:
            return f"level {z} is not in the pyramid: levels are 0 (full resolution) to {self.levels - 1}"
        cols, rows = self.grid(z)
        if not (0 <= x < cols and 0 <= y < rows):
            return f"tile ({x}, {y}) is outside level {z}: x is 0..{cols - 1} and y is 0..{rows - 1}"
        return ""

    def to_json(self) -> dict[str, int]:
        return {"tile_size": self.tile_size, "levels": self.levels, "width": self.width, "height": self.height}


def needs_pyramid(width: int, height: int) -> bool:
    """Whether an image of this size is served as tiles (a side longer than :data:`TILE_MIN_SIDE`)."""
    return max(width, height) > TILE_MIN_SIDE


def pyramid_info(width: int, height: int) -> PyramidInfo | None:
    """The pyramid an image of this size has (or will have once built); None for an image served whole."""
    return PyramidInfo(width, height) if needs_pyramid(width, height) else None


def build_pyramid(
    source: bytes | str | Path, dest: Path, *, tile_size: int = TILE_SIZE, quality: int = TILE_QUALITY,
    name: str | None = None,
) -> PyramidInfo:
    """Write the pyramid of ``source`` (an image file or its bytes) to the folder ``dest``, which appears complete
    or not at all. Returns its geometry. Raises :class:`ImageError` for a file libvips cannot read in full."""
    name = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".tmp-{dest.name[:16]}-"))
    try:
        with uncached():
            return _build(source, dest, work, tile_size=tile_size, quality=quality, name=name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(source: bytes | str | Path, dest: Path, work: Path, *, tile_size: int, quality: int, name: str) -> PyramidInfo:
    image = open_image(source, name=name)
    info = PyramidInfo(image.width, image.height, tile_size)
    vips_out = work / "vips"
    try:
        image.dzsave(str(vips_out), layout="dz", tile_size=tile_size, overlap=0, depth="onetile",
                     suffix=_suffix(quality), skip_blanks=-1)
    except pyvips.Error as e:  # a truncated or corrupt file, found while reading its pixels
        said = [line for line in f"{e.detail or ''}\n{e.message}".splitlines() if line.strip()]
        raise ImageError(name, f"truncated or corrupt: its pixels cannot be read for its tiles ({said[0].strip()}); "
                         "import the original file again") from e
    out = work / "pyramid"
    _arrange(vips_out, out, info, quality)
    (out / _INFO).write_text(json.dumps({**info.to_json(), "format": TILE_FORMAT, "quality": quality}))
    try:
        os.rename(out, dest)
    except OSError:
        if not (dest / _INFO).is_file():  # not a concurrent build of the same image that finished first
            raise
    return info


def _suffix(quality: int) -> str:
    return f".{TILE_FORMAT}[Q={quality},effort={TILE_EFFORT},keep=none]"


def _arrange(vips_out: Path, out: Path, info: PyramidInfo, quality: int) -> None:
    """libvips' Deep Zoom layout (``<stem>_files/<z>/<x>_<y>``, z = 0 the smallest, edge tiles cut to the image) to
    ours (z = 0 the largest, every tile square: edge tiles padded by repeating their last column and row)."""
    levels, size = info.levels, info.tile_size
    (files,) = vips_out.parent.glob(f"{vips_out.name}_files")
    made = sorted(int(p.name) for p in files.iterdir() if p.name.isdigit())
    if made != list(range(levels)):
        raise VisionloopError(f"the tile builder made levels {made} for a {info.width}x{info.height} image, not 0.."
                              f"{levels - 1}; report this as a bug")
    for z in range(levels):
        level_dir = out / str(z)
        level_dir.mkdir(parents=True)
        cols, rows = info.grid(z)
        src = files / str(levels - 1 - z)
        for y in range(rows):
            for x in range(cols):
                name = f"{x}_{y}.{TILE_FORMAT}"
                tile = src / name
                if not tile.is_file():
                    raise VisionloopError(f"the tile builder left out level {z} tile ({x}, {y}) of a "
                                          f"{info.width}x{info.height} image; report this as a bug")
                if x == cols - 1 or y == rows - 1:
                    edge = pyvips.Image.new_from_file(str(tile))
                    if (edge.width, edge.height) != (size, size):
                        edge.embed(0, 0, size, size, extend="copy").write_to_file(
                            str(level_dir / name) + _suffix(quality).removeprefix(f".{TILE_FORMAT}"))
                        continue
                os.replace(tile, level_dir / name)


class TileStore:
    """The pyramids of one project, under ``<project>/tiles``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, project: Project) -> TileStore:
        return cls(project.root / TILES_DIR)

    def folder(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise NotFoundError("image content", sha256, hint="a sha256 is 64 lowercase hex digits")
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return (self.folder(sha256) / _INFO).is_file()

    def info(self, sha256: str) -> PyramidInfo | None:
        """The geometry of a built pyramid; None when it is not built."""
        try:
            saved = json.loads((self.folder(sha256) / _INFO).read_text())
        except FileNotFoundError:
            return None
        return PyramidInfo(saved["width"], saved["height"], saved["tile_size"])

    def tile_path(self, sha256: str, z: int, x: int, y: int) -> Path:
        return self.folder(sha256) / str(z) / f"{x}_{y}.{TILE_FORMAT}"

    def ensure(self, sha256: str, source: Callable[[], bytes | str | Path], *, name: str | None = None) -> None:
        """Build the pyramid of blob ``sha256`` unless it is there; ``source`` gives the file or bytes to read.

        Two threads asking for the same pyramid build it once; builds of different images run one at a time."""
        dest = self.folder(sha256)
        if self.has(sha256):
            return
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(dest, threading.Lock())
        with lock:
            if self.has(sha256):
                return
            with _BUILD_SLOTS:
                build_pyramid(source(), dest, name=name or sha256)

    def level_image(self, sha256: str, z: int, info: PyramidInfo) -> Image.Image:
        """Level ``z`` of a built pyramid as one RGB image (for previews: at most 4096 px on a side)."""
        w, h = info.level_size(z)
        if max(w, h) > _PREVIEW_MAX_SIDE:
            raise VisionloopError(f"level {z} is {w}x{h}; stitch levels of at most {_PREVIEW_MAX_SIDE} px only")
        canvas = Image.new("RGB", (w, h))
        cols, rows = info.grid(z)
        for y in range(rows):
            for x in range(cols):
                with Image.open(self.tile_path(sha256, z, x, y)) as tile:
                    canvas.paste(tile.convert("RGB"), (x * info.tile_size, y * info.tile_size))
        return canvas

    def preview(self, sha256: str, info: PyramidInfo, size: int) -> Image.Image:
        """The smallest level with at least ``size`` pixels on its longer side (the whole image, downsampled)."""
        z = info.levels - 1
        while z > 0 and max(info.level_size(z)) < size:
            z -= 1
        return self.level_image(sha256, z, info)

    def remove(self, sha256: str) -> None:
        shutil.rmtree(self.folder(sha256), ignore_errors=True)


def _large_images(project: Project) -> Iterator[tuple[str, str]]:
    """(sha256, name) of each distinct image content of the project larger than :data:`TILE_MIN_SIDE`."""
    q = (select(ImageRow.sha256, ImageRow.name)
         .where(or_(ImageRow.width > TILE_MIN_SIDE, ImageRow.height > TILE_MIN_SIDE)).order_by(ImageRow.id))
    seen: set[str] = set()
    with project.engine.connect() as c:
        rows = c.execute(q).all()
    for sha, name in rows:
        if sha not in seen:
            seen.add(sha)
            yield sha, name


def build_missing_pyramids(
    project: Project, *, on_image: Callable[[str, ImageError | None], None] | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Build the pyramid of every large image of ``project`` that has none (images imported before pyramids, or
    whose build was interrupted). Returns (pyramids built, [(image name, problem)] for images that failed)."""
    store = TileStore.of(project)
    built, failed = 0, []
    for sha, name in _large_images(project):
        if store.has(sha):
            continue
        try:
            store.ensure(sha, lambda sha=sha: project.blobs.source(sha), name=name)
            built += 1
            error = None
        except ImageError as e:
            failed.append((name, e.reason))
            error = e
        if on_image is not None:
            on_image(name, error)
    return built, failed

