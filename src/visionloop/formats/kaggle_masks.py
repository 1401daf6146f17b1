"""Kaggle instance-mask folders (Data Science Bowl 2018 layout): one folder per image.

::

    <root>/<id>/images/<id>.png        the image (DSB: RGBA PNG)
    <root>/<id>/masks/<mask>.png       one binary PNG (0 / 255) per instance
    <root>/<id>/masks/<class>/<m>.png  (optional) instances grouped by class folder

``<root>`` may also be one level up (``dsb2018-nuclei/stage1_train/<id>``); the middle folder becomes the subset.
Masks become ``Instances`` with COCO RLE outlines and boxes from the masks; the class is the mask's class folder, else
``nucleus`` (the DSB class). ``save`` writes the same layout, one 0/255 PNG per instance named ``<k>.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from visionloop.core.annotations import RLE, Boxes, Instances, SemanticMask
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._geometry import mask_bbox
from visionloop.formats._paths import find_in_folder, folder_confidence, image_size, inside, unique_export_names
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, is_image_file, safe_for_export

__all__ = ["DEFAULT_CLASS", "NAME", "TASKS", "detect", "load", "save"]

NAME = "kaggle_masks"
TITLE = "a mask PNG per object (Kaggle DSB)"
TASKS = frozenset({Task.SEGMENTATION})
DEFAULT_CLASS = "nucleus"


def _is_item(folder: Path) -> bool:
    """``folder/images`` holds one image and ``folder/masks`` its instance masks (not a mask named like it, which
    is the semantic-mask layout)."""
    if not ((folder / "images").is_dir() and (folder / "masks").is_dir()):
        return False
    images = [p for p in (folder / "images").iterdir() if is_image_file(p)]
    if len(images) != 1:
        return False
    return not any((folder / "masks" / (images[0].stem + ext)).exists() for ext in (".png", ".PNG"))


def _items(root: Path, *, limit: int | None = None) -> list[tuple[str | None, Path]]:
    """(subset, item folder) pairs, looking at ``root``'s children and grandchildren."""
    if _is_item(root):
        return [(None, root)]
    out: list[tuple[str | None, Path]] = []
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for child in children:
        if _is_item(child):
            out.append((None, child))
        elif child.name not in ("images", "masks"):
            for grand in sorted(p for p in child.iterdir() if p.is_dir()):
                if _is_item(grand):
                    out.append((child.name, grand))
                if limit is not None and len(out) >= limit:
                    return out
        if limit is not None and len(out) >= limit:
            break
    return out


def detect(path: Path) -> float:
    """0.95 for a folder of ``<id>/images`` + ``<id>/masks`` folders (or one such folder)."""
    return folder_confidence(Path(path), lambda folder: 0.95 if _items(folder, limit=3) else 0.0)


def _read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=2) if arr.shape[2] >= 3 else arr[..., 0]
    return arr > 0


def _load_item(subset: str | None, folder: Path, root: Path, ds: FormatDataset) -> Sample | None:
    where = folder.relative_to(root).as_posix()
    images = sorted(p for p in (folder / "images").iterdir() if is_image_file(p))
    if not images:
        ds.problems.append(Problem(path=where, reason="images/ holds no image"))
        return None
    preferred = [p for p in images if p.stem == folder.name]
    image_path = (preferred or images)[0]
    if len(images) > 1:
        ds.problems.append(Problem(path=where, reason=f"images/ holds {len(images)} images; used {image_path.name}",
                                   action="repaired"))
    size = image_size(image_path)
    if size is None:
        ds.problems.append(Problem(path=where, reason=f"{image_path.name} is not a readable image"))
        return None
    width, height = size
    sample = Sample(name=image_path.relative_to(root).as_posix(), image_path=image_path, width=width, height=height,
                    subset=subset)
    masks: list[tuple[str, Path]] = []
    for p in inside(root, sorted((folder / "masks").iterdir())):  # links leading out of the dataset: not read
        if p.is_dir():
            masks += [(p.name, m) for m in inside(root, sorted(p.iterdir())) if is_image_file(m)]
        elif is_image_file(p):
            masks.append((DEFAULT_CLASS, p))
    rles: list[RLE] = []
    xyxy: list[tuple[float, float, float, float]] = []
    cids: list[int] = []
    for cls, m in masks:
        try:
            mask = _read_mask(m)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
            ds.problems.append(Problem(path=f"{where}/masks/{m.name}", reason=f"unreadable mask: {e}"))
            continue
        if mask.shape != (height, width):
            ds.problems.append(Problem(path=f"{where}/masks/{m.name}", reason=f"mask is {mask.shape[1]}x"
                                       f"{mask.shape[0]}, image is {width}x{height}"))
            continue
        box = mask_bbox(mask)
        if box is None:
            ds.problems.append(Problem(path=f"{where}/masks/{m.name}", reason="mask is empty"))
            continue
        rles.append(RLE.encode(mask))
        xyxy.append(box)
        cids.append(ds.class_index(cls))
    boxes = Boxes(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4), np.asarray(cids, dtype=np.int64))
    sample.annotation = Instances(boxes, list(rles))
    return sample


def load(path: Path) -> FormatDataset:
    """Read every ``<id>/images`` + ``<id>/masks`` folder under ``path``."""
    path = Path(path)
    items = find_in_folder(path, _items, fmt=NAME, reason="expected folders <id>/images/<id>.png and "
                           "<id>/masks/*.png (Kaggle DSB layout), directly under the folder or one level down")
    ds = FormatDataset(task=Task.SEGMENTATION)
    for subset, folder in items:
        try:
            sample = _load_item(subset, folder, path, ds)
        except OSError as e:
            ds.problems.append(Problem(path=str(folder), reason=f"unreadable folder: {e}"))
            continue
        if sample is not None:
            ds.samples.append(sample)
    if not ds.classes:
        ds.classes.append(DEFAULT_CLASS)
    return ds


def _instance_masks(sample: Sample) -> list[tuple[int, np.ndarray]]:
    ann = sample.annotation
    if isinstance(ann, SemanticMask):
        return [(c, ann.mask == c) for c in ann.class_ids()]
    if isinstance(ann, Instances):
        h, w = sample.height, sample.width
        if not (h and w):
            size = image_size(sample.image_path)
            w, h = size if size else (0, 0)
        return [(int(ann.boxes.class_id[i]), ann.mask(i, h or 0, w or 0)) for i in range(len(ann))]
    if isinstance(ann, Boxes):
        raise FormatError(sample.name, NAME, "kaggle_masks holds instance masks; boxes have none. Export a "
                          "segmentation version, or choose a detection format (coco, voc, yolo)")
    return []


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``out/[<subset>/]<id>/images/<id>.<ext>`` and ``masks/<k>.png`` (0/255, one per instance).

    With more than one class, masks go to ``masks/<class>/<k>.png`` so the classes survive a re-import.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = safe_for_export(dataset)
    by_folder = [c for c in dataset.classes] != [DEFAULT_CLASS]
    class_folders = unique_export_names(dataset.classes, folders=True)
    used: set[str] = set()
    for sample in dataset.samples:
        stem = Path(sample.name).stem
        item_id = stem
        k = 1
        while f"{sample.subset}/{item_id}" in used:
            k += 1
            item_id = f"{stem}_{k}"
        used.add(f"{sample.subset}/{item_id}")
        folder = out / sample.subset / item_id if sample.subset else out / item_id
        ext = sample.image_path.suffix if sample.image_path else Path(sample.name).suffix or ".png"
        copy_image(sample, folder / "images", f"{item_id}{ext}")
        masks_dir = folder / "masks"
        masks_dir.mkdir(parents=True, exist_ok=True)
        for i, (cid, mask) in enumerate(_instance_masks(sample)):
            dest = masks_dir / class_folders[cid] if by_folder else masks_dir
            dest.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(dest / f"{i:04d}.png", optimize=False)
