"""Folders of class folders (classification): ``root/<class>/<image>``, or ``root/<subset>/<class>/<image>``.

The class of an image is the first folder below the root (or below the subset folder); images deeper inside a class
folder belong to it (``cat/indoor/1.jpg`` is a ``cat``). The subset layout is used when every folder directly under
the root is named ``train``, ``val``, ``valid``, ``validation``, ``test`` (or a similar split word); those names
become ``Sample.subset``. Images directly under the root (or a subset folder) have no class: they are loaded
unannotated and reported. ``Sample.name`` is the path below the root (``train/cat/1.jpg``).

Export writes ``out/[<subset>/]<class>/<file>`` (unannotated images go directly under ``out/[<subset>/]``).
"""

from __future__ import annotations

import os
from pathlib import Path

from visionloop.core.annotations import Label
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._paths import SPLIT_NAMES, relative_in_subset, unique_export_names
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, is_image_file, safe_for_export

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "class_folders"
TITLE = "a folder per class"
TASKS = frozenset({Task.CLASSIFICATION})

_NOT_CLASSES = {
    "images", "masks", "labels", "annotations", "jpegimages", "segmentationclass", "segmentationobject", "imagesets",
    "img", "imgs",
}
"""Folder names that belong to other formats' layouts, never to a class."""
_ANNOTATION_SUFFIXES = {".json", ".xml", ".txt", ".csv", ".yaml", ".yml"}
_EXPECTED = "expected a folder of class folders: <root>/<class>/<image>, or <root>/<subset>/<class>/<image>"


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _is_split_layout(root: Path) -> bool:
    dirs = _subdirs(root)
    return bool(dirs) and all(d.name.lower() in SPLIT_NAMES for d in dirs)


def _files(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        out.extend(Path(dirpath) / n for n in sorted(filenames) if not n.startswith("."))
    return out


def detect(path: Path) -> float:
    path = Path(path)
    if not path.is_dir():
        return 0.0
    tops = [path]
    if _is_split_layout(path):
        tops = _subdirs(path)
    class_dirs = [d for top in tops for d in _subdirs(top)]
    if not class_dirs:
        return 0.0
    if any(d.name.lower() in _NOT_CLASSES for d in class_dirs):
        return 0.0
    with_images = 0
    for d in class_dirs[:50]:
        names = [p for p in d.iterdir() if p.is_file()]
        if any(p.suffix.lower() in _ANNOTATION_SUFFIXES for p in names):
            return 0.0
        if any(is_image_file(p) for p in names):
            with_images += 1
    if not with_images:
        return 0.0
    loose = [p for top in tops for p in top.iterdir() if p.is_file() and p.suffix.lower() in _ANNOTATION_SUFFIXES]
    return 0.1 if loose else 0.5


def load(path: Path) -> FormatDataset:
    """Read class folders; see the module docstring."""
    root = Path(path)
    if not root.is_dir():
        raise FormatError(root, NAME, _EXPECTED)
    split = _is_split_layout(root)
    tops = [(d, d.name) for d in _subdirs(root)] if split else [(root, None)]
    ds = FormatDataset(task=Task.CLASSIFICATION)
    class_names = sorted({d.name for top, _ in tops for d in _subdirs(top)})
    for name in class_names:
        ds.class_index(name)
    for top, subset in tops:
        for f in _files(top):
            if not is_image_file(f):
                continue
            rel = f.relative_to(root).as_posix()
            parts = f.relative_to(top).parts
            sample = Sample(name=rel, image_path=f, subset=subset)
            if len(parts) == 1:
                ds.problems.append(Problem(path=rel, action="kept", reason=(
                    "image is not inside a class folder; loaded without a class")))
            else:
                sample.annotation = Label(ds.class_index(parts[0]))
            ds.samples.append(sample)
    if not ds.samples:
        raise FormatError(root, NAME, _EXPECTED + "; no images found")
    return ds


def save(dataset: FormatDataset, out: Path) -> None:
    """Copy each image to ``out/[<subset>/]<class>/<file>``."""
    out = Path(out)
    if dataset.task not in (Task.CLASSIFICATION,):
        raise FormatError(out, NAME, f"class folders carry one class per image, not {dataset.task}")
    out.mkdir(parents=True, exist_ok=True)
    dataset = safe_for_export(dataset)
    folders = unique_export_names(dataset.classes, folders=True)  # a class name is one folder level, never a path
    for s in dataset.samples:
        base = out / s.subset if s.subset else out
        rel = relative_in_subset(s)
        if s.annotation is None:
            copy_image(s, base, rel.replace("/", "__"))
            continue
        if not isinstance(s.annotation, Label):
            raise FormatError(out, NAME, f"sample {s.name!r} has a {type(s.annotation).__name__}, not a Label")
        cls = folders[s.annotation.class_id]
        if rel.startswith(f"{cls}/"):
            rel = rel[len(cls) + 1:]
        copy_image(s, base / cls, rel)
