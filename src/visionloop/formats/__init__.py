"""Annotation formats of the tools people use; one module each with ``detect``, ``load`` and ``save``.

``FORMATS`` lists the registry names; modules are imported when first used. :func:`detect_source` decides what an
import reads: the format that claims the folder, else ``"images"`` when it holds nothing but images, else a
:class:`~visionloop.core.errors.FormatError` that lists the formats tried and the files none of them recognised (a
truncated, emptied or garbled annotation file is never mistaken for a folder of plain images).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from visionloop.core.errors import FormatError, NotFoundError
from visionloop.formats.base import FormatDataset, Problem, Sample, is_image_file

FORMATS: dict[str, str] = {
    "coco": "visionloop.formats.coco",
    "voc": "visionloop.formats.voc",
    "yolo": "visionloop.formats.yolo",
    "cvat": "visionloop.formats.cvat",
    "labelstudio": "visionloop.formats.labelstudio",
    "labelme": "visionloop.formats.labelme",
    "via": "visionloop.formats.via",
    "kaggle_masks": "visionloop.formats.kaggle_masks",
    "semantic_masks": "visionloop.formats.semantic_masks",
    "csv": "visionloop.formats.csv_table",
    "class_folders": "visionloop.formats.class_folders",
}
"""Registry name -> module. Order matters only to break ties in detection (earlier wins)."""

__all__ = ["FORMATS", "IMAGES", "FormatDataset", "Problem", "Sample", "detect_format", "detect_source", "format_catalog",
           "get_format", "unwrap_folder"]

IMAGES = "images"
"""The pseudo-format of a folder of plain images without annotations."""

_HARMLESS = frozenset({"thumbs.db", "desktop.ini"})
"""File names tools and file managers leave beside images; they do not make a folder more than images."""


def get_format(name: str) -> ModuleType:
    if name not in FORMATS:
        raise NotFoundError("format", name, choices=list(FORMATS))
    return importlib.import_module(FORMATS[name])


def format_catalog() -> list[dict[str, object]]:
    """Every registered format with its ``title`` and the ``tasks`` (values, sorted) it holds, in registry order:
    what import and export offer (every format reads and writes)."""
    out: list[dict[str, object]] = []
    for name in FORMATS:
        module = get_format(name)
        out.append({"name": name, "title": module.TITLE, "tasks": sorted(t.value for t in module.TASKS)})
    return out


def _scores(path: Path) -> list[tuple[float, str]]:
    scores = []
    for name in FORMATS:
        try:
            confidence = get_format(name).detect(path)
        except ModuleNotFoundError:
            continue
        except OSError:  # an unreadable file or folder: this format cannot tell
            confidence = 0.0
        scores.append((confidence, name))
    return scores


def _not_images(path: Path, *, limit: int = 5) -> tuple[int, list[str], int]:
    """(number of images, up to ``limit`` names of other files, number of other files) under ``path``."""
    files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
    images, others, n_others = 0, [], 0
    for p in files:
        rel = p.name if p == path else p.relative_to(path).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts) or p.name.lower() in _HARMLESS:
            continue
        if p.name.lower().startswith(("readme", "license", "licence")):
            continue
        if is_image_file(p):
            images += 1
            continue
        n_others += 1
        if len(others) < limit:
            others.append(rel)
    return images, others, n_others


def _no_format(path: Path, found: tuple[int, list[str], int] | None = None) -> FormatError:
    tried = ", ".join(FORMATS)
    if not path.exists():
        return FormatError(path, None, "no such file or folder")
    images, others, n_others = found or _not_images(path)
    if not others:
        what = f"only {images} image(s) and no annotations" if images else "no images and no annotations"
        return FormatError(path, None, f"no known format recognised (formats tried: {tried}): {what} found"
                           + ("; to import the images alone, use --format images" if images else ""))
    listed = ", ".join(others) + (f" and {n_others - len(others)} more" if n_others > len(others) else "")
    return FormatError(path, None, (
        f"no known format recognised (formats tried: {tried}); {n_others} file(s) are neither images nor annotations "
        f"any format could read ({listed}). If they are annotations, check that they are complete (not truncated, "
        "emptied or garbled) and name the format with --format"
        + (f"; to import only the {images} image(s), use --format images" if images else "")))


def _best(path: Path) -> tuple[float, str]:
    return max(_scores(path), default=(0.0, ""), key=lambda s: s[0])


def detect_format(path: str | Path) -> tuple[str, float]:
    """The most likely format of ``path`` and the confidence; FormatError listing the formats tried and the files
    none of them recognised when no format claims it."""
    path = Path(path)
    confidence, name = _best(path)
    if confidence <= 0:
        raise _no_format(path)
    return name, confidence


def _is_note(p: Path) -> bool:
    """A file that rides along with a dataset without being part of it (README, licence, file-manager leftovers)."""
    name = p.name.lower()
    return p.is_file() and (name in _HARMLESS or name.startswith(("readme", "license", "licence")))


def unwrap_folder(path: str | Path, *, depth: int = 4) -> Path:
    """The folder a dataset sits in when ``path`` only wraps it: while no format claims ``path`` and it holds one
    folder and nothing else (hidden files, READMEs and licences aside), that folder, up to ``depth`` levels (an
    archive ``dataset.zip`` of ``dataset/BCCD/Annotations``, a folder dropped in the browser)."""
    path = Path(path)
    for _ in range(depth):
        if not path.is_dir() or _best(path)[0] > 0:
            return path
        entries = [p for p in path.iterdir() if not p.name.startswith(".") and not _is_note(p)]
        if len(entries) != 1 or not entries[0].is_dir():
            return path
        path = entries[0]
    return path


def detect_source(path: str | Path) -> str:
    """What an import of ``path`` reads: a format's registry name, or :data:`IMAGES` when no format claims it and it
    holds images and nothing else (hidden files, READMEs and licences aside). FormatError otherwise."""
    path = Path(path)
    confidence, name = _best(path)
    if confidence > 0:
        return name
    found = _not_images(path) if path.exists() else (0, [], 0)
    if found[0] and not found[1]:
        return IMAGES
    raise _no_format(path, found)
