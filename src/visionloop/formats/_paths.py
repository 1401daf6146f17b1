"""File helpers shared by the formats of this package: image sizes, split names, finding images, peeking files,
finding a layout's folders."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image, UnidentifiedImageError

from visionloop.core.errors import FormatError
from visionloop.formats.base import IMAGE_EXTENSIONS, Sample

__all__ = [
    "SPLIT_NAMES",
    "ImageFinder",
    "annotation_files",
    "candidate_files",
    "find_in_folder",
    "folder_confidence",
    "head",
    "read_json",
    "image_size",
    "read_head",
    "read_tail",
    "relative_in_subset",
    "split_of",
]

SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing", "dev", "trainval"})
"""Folder or file-name words that name a subset (compared lower-case)."""

_ORIENTATION_TAG = 0x0112

_T = TypeVar("_T")


def image_size(path: Path | None) -> tuple[int, int] | None:
    """(width, height) in pixels after EXIF orientation, read from the header only; None if not readable."""
    if path is None:
        return None
    try:
        with Image.open(path) as im:
            w, h = im.size
            oriented = (im.format or "").upper() in {"JPEG", "MPO", "TIFF", "WEBP", "PNG"}
            if oriented and int(im.getexif().get(_ORIENTATION_TAG, 1) or 1) in {5, 6, 7, 8}:
                w, h = h, w
            return int(w), int(h)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


def split_of(text: str) -> str | None:
    """The split a file or folder name names (``train-export`` -> ``train``), or None."""
    low = text.lower()
    if low in SPLIT_NAMES:
        return text
    for token in re.split(r"[^a-z0-9]+", low):
        if token in SPLIT_NAMES:
            return token
    return None


def read_head(path: Path, size: int = 65536) -> str:
    """The first ``size`` bytes of a file as text (undecodable bytes replaced); '' when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", errors="replace")
    except OSError:
        return ""


def head(path: Path, size: int = 65536) -> str:
    """Like :func:`read_head`, without a BOM or leading blanks: for sniffing a format without parsing the file."""
    return read_head(path, size).lstrip("\ufeff \t\r\n")


def candidate_files(path: Path, suffix: str, *, limit: int = 50) -> list[Path]:
    """``path`` itself when it is a ``suffix`` file, else up to ``limit`` such files directly inside the folder."""
    if path.is_file():
        return [path] if path.suffix.lower() == suffix else []
    if not path.is_dir():
        return []
    out = []
    for p in sorted(path.iterdir()):
        if p.is_file() and p.suffix.lower() == suffix and not p.name.startswith("."):
            out.append(p)
            if len(out) >= limit:
                break
    return out


def annotation_files(
    path: Path, suffix: str, accept: Callable[[Path], bool], *, fmt: str, reason: str, limit: int = 1000
) -> list[Path]:
    """The ``suffix`` files at ``path`` (the file itself, or up to ``limit`` at the top level of a folder) that
    ``accept`` takes, or ``FormatError(path, fmt, reason)`` when there are none."""
    files = [p for p in candidate_files(path, suffix, limit=limit) if accept(p)]
    if not files:
        raise FormatError(path, fmt, reason)
    return files


def find_in_folder(path: Path, find: Callable[[Path], Sequence[_T]], *, fmt: str, reason: str) -> Sequence[_T]:
    """``find(path)`` for a folder's layout units (item folders, image/mask folder pairs), or
    ``FormatError(path, fmt, reason)`` when ``path`` is not a folder or ``find`` finds none."""
    found = find(path) if path.is_dir() else []
    if not found:
        raise FormatError(path, fmt, reason)
    return found


def folder_confidence(path: Path, probe: Callable[[Path], float]) -> float:
    """``probe(path)``, a format's confidence for a folder; 0.0 when ``path`` is not a folder or reading it fails."""
    if not path.is_dir():
        return 0.0
    try:
        return probe(path)
    except OSError:
        return 0.0


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8-sig") as f:
        return json.load(f)


def read_tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def relative_in_subset(sample: Sample) -> str:
    """The sample's name without a leading ``<subset>/`` folder (the subset gets its own folder on export)."""
    name = sample.name.replace("\\", "/").lstrip("/")
    if sample.subset and name.startswith(f"{sample.subset}/"):
        return name[len(sample.subset) + 1:]
    return name


class ImageFinder:
    """Finds images named by an annotation among candidate folders, trying the folder that worked last first.

    A name without an image extension also matches ``name.<ext>`` for any image extension.
    """

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders: list[Path] = []
        for f in folders:
            if f not in self.folders and f.is_dir():
                self.folders.append(f)
        self._last = 0

    def find(self, name: str) -> Path | None:
        name = name.replace("\\", "/")
        order = [self._last, *(i for i in range(len(self.folders)) if i != self._last)]
        for i in order:
            if i >= len(self.folders):
                continue
            cand = self.folders[i] / name
            if cand.is_file():
                self._last = i
                return cand
            if cand.suffix.lower() not in IMAGE_EXTENSIONS:
                for ext in (".jpg", ".png", ".jpeg", *sorted(IMAGE_EXTENSIONS)):
                    alt = cand.with_name(cand.name + ext)
                    if alt.is_file():
                        self._last = i
                        return alt
        return None
