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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from visionloop.core.annotations import Annotation
from visionloop.core.task import Task
from visionloop.formats._paths import (
    IMAGE_EXTENSIONS,
    resolve_inside,
    safe_export_name,
    safe_folder_name,
    safe_relative_name,
    unique_export_names,
)

__all__ = [
    "IMAGE_EXTENSIONS", "FormatDataset", "Problem", "Sample", "copy_image", "find_image", "is_image_file",
    "safe_for_export",
]


@dataclass(kw_only=True)
class Sample:
    """One image of a dataset and its annotation.

    ``name`` is the image's path relative to the dataset's image root (posix, e.g. ``train/cat/1.jpg``), used as
    file name on export. ``image_path`` is the file on disk (None when the annotation names a missing image).
    ``image_data`` holds the image's bytes instead when the annotation file embeds it (LabelMe ``imageData``):
    decoded in memory, never written to a temporary folder; the importer stores it like a file's bytes.
    ``width``/``height`` are what the annotation file says (pixels), or None when it says nothing.
    ``annotation`` None means "not annotated"; an empty Boxes/Tags means "annotated: nothing there".
    """

    name: str
    image_path: Path | None = None
    image_data: bytes | None = field(default=None, repr=False)
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


def safe_for_export(dataset: FormatDataset, *, per_subset: bool = True) -> FormatDataset:
    """A copy of ``dataset`` whose sample names and subsets can be used as paths under an output folder.

    Names go through :func:`~visionloop.formats._paths.unique_export_names` (relative, no ``..``, sanitised, no two
    alike within a subset, or within the whole dataset with ``per_subset=False``; told apart by the image's
    ``meta["sha256"]`` when known), subsets through ``safe_folder_name``. Names that were safe and unique already stay
    as they are. Every ``save`` starts with it; the samples' other fields are shared.
    """
    groups: dict[str | None, list[int]] = {}
    for i, s in enumerate(dataset.samples):
        groups.setdefault(s.subset if per_subset else None, []).append(i)
    names = [s.name for s in dataset.samples]
    for idx in groups.values():
        keys = [str(dataset.samples[i].meta.get("sha256") or "") for i in idx]
        unique = unique_export_names([names[i] for i in idx], keys=keys if all(keys) else None)
        for i, name in zip(idx, unique, strict=True):
            names[i] = name
    samples = [
        s if (name == s.name and (s.subset is None or safe_folder_name(s.subset) == s.subset))
        else replace(s, name=name, subset=None if s.subset is None else safe_folder_name(s.subset))
        for s, name in zip(dataset.samples, names, strict=True)
    ]
    return replace(dataset, samples=samples)


def copy_image(sample: Sample, out_dir: Path, name: str | None = None) -> Path:
    """Copy the sample's image to ``out_dir/name`` (default: ``sample.name``); returns the destination.

    The name is made safe first (:func:`~visionloop.formats._paths.safe_export_name`) and the destination checked to
    stay inside ``out_dir`` (symbolic links followed), so a name from a data file never writes elsewhere.
    """
    dest = resolve_inside(out_dir, safe_export_name(name or sample.name))
    if sample.image_path is None and sample.image_data is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists() or dest.stat().st_size != len(sample.image_data):
            dest.write_bytes(sample.image_data)
    elif sample.image_path is not None:
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
    rel = safe_relative_name(name)
    for sub in search:
        folder = root / sub if sub else root
        base = folder / rel
        if base.is_file():
            return resolve_inside(folder, rel)
        if not base.suffix or base.suffix.lower() not in IMAGE_EXTENSIONS:
            for ext in IMAGE_EXTENSIONS:
                cand = base.with_name(base.name + ext)
                if cand.is_file():
                    return resolve_inside(folder, f"{rel}{ext}")
    return None
