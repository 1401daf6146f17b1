"""What every format module shares: the in-memory dataset a format reads and writes.

A format module (one per format, e.g. ``formats/coco.py``) exposes::

    NAME: str                       # registry name, e.g. "coco"
    TASKS: frozenset[Task]          # tasks it can carry
    def detect(path: Path) -> float            # confidence 0..1 that ``path`` (file or folder) is this format
    def load(path: Path) -> FormatDataset      # read; problems per file go to ``dataset.problems``
    def save(dataset: FormatDataset, out: Path) -> None   # write annotations and copy the images

Class ids inside a ``FormatDataset`` are indexes into ``dataset.classes`` (the format's own class list); the importer
maps them to the project's stable ids by name, and the exporter maps back.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionloop.core.annotations import Annotation
from visionloop.core.task import Task
from visionloop.formats._paths import IMAGE_EXTENSIONS, resolve_inside, safe_export_name

__all__ = [
    "IMAGE_EXTENSIONS", "FormatDataset", "Problem", "Sample", "copy_image", "find_image", "is_image_file",
]


@dataclass(kw_only=True)
class Sample:
    """One image of a dataset and its annotation.

    ``name`` is the image's path relative to the dataset's image root (posix, e.g. ``train/cat/1.jpg``), used as
    file name on export. ``image_path`` is the file on disk (None when the annotation names a missing image).
    ``width``/``height`` are what the annotation file says (pixels), or None when it says nothing.
    ``annotation`` None means "not annotated"; an empty Boxes/Tags means "annotated: nothing there".
    """

    name: str
    image_path: Path | None = None
    annotation: Annotation | None = None
    width: int | None = None
    height: int | None = None
    video_id: str | None = None
    frame_index: int | None = None
    timestamp: float | None = None
    subset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Problem:
    """Something wrong with one file or item; the import goes on without it (or with it repaired)."""

    path: str
    reason: str
    action: str = "skipped"
    """What was done: "skipped", "clipped", "repaired", ..."""


@dataclass(kw_only=True)
class FormatDataset:
    task: Task
    classes: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def class_index(self, name: str) -> int:
        """Index of ``name`` in ``classes``, appending it when new."""
        try:
            return self.classes.index(name)
        except ValueError:
            self.classes.append(name)
            return len(self.classes) - 1


def copy_image(sample: Sample, out_dir: Path, name: str | None = None) -> Path:
    """Copy the sample's image to ``out_dir/name`` (default: ``sample.name``); returns the destination.

    The name is made safe first (:func:`~visionloop.formats._paths.safe_export_name`) and the destination checked to
    stay inside ``out_dir`` (symbolic links followed), so a name from a data file never writes elsewhere.
    """
    dest = resolve_inside(out_dir, safe_export_name(name or sample.name))
    if sample.image_path is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists() or dest.stat().st_size != sample.image_path.stat().st_size:
            shutil.copyfile(sample.image_path, dest)
    return dest


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_image(root: Path, name: str, *, search: tuple[str, ...] = ("", "images", "JPEGImages", "img")) -> Path | None:
    """Find an image referenced by ``name`` under ``root`` (tries subfolders and any image extension).

    Raises :class:`~visionloop.formats._paths.UnsafePathError` when ``name`` would lead outside ``root``/``sub``.
    """
    for sub in search:
        base = resolve_inside(root / sub if sub else root, name)
        if base.is_file():
            return base
        if not base.suffix or base.suffix.lower() not in IMAGE_EXTENSIONS:
            for ext in IMAGE_EXTENSIONS:
                cand = base.with_name(base.name + ext)
                if cand.is_file():
                    return resolve_inside(root / sub if sub else root, f"{name}{ext}")
    return None
