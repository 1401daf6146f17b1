"""Semantic segmentation as mask PNGs beside the images.

Layouts:

- ``images/`` + ``masks/`` (or ``labels/``, ``gt/``, ``SegmentationClass/``): a mask per image, matched by relative
  path without extension; when names differ by a fixed prefix (``image_0001`` / ``gt_0001``) the prefixes are dropped.
- CamVid: ``<split>/`` + ``<split>annot/`` folder pairs (``train``/``trainannot``); the split becomes the subset.

Mask pixels: palette (``P``) and grey PNGs hold class indices (255 = unlabelled); RGB PNGs hold class colours, mapped
by ``dataset_meta.json`` (Datumaro: ``label_map`` + ``segmentation_colors``), ``labelmap.txt`` (``name:r,g,b::``),
``labelmap.csv`` (``name,r,g,b``),
``label_colors.txt`` (CamVid: ``r g b name``), or, for CamVid folders, the 32 standard CamVid colours. Class names
come from those files or ``classes.txt`` (one per line). Colours no map names become unlabelled (reported).

``save`` writes ``images/``, ``masks/<stem>.png`` (palette PNGs: index = class, palette = class colours) and
``dataset_meta.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from visionloop.core.annotations import Instances, SemanticMask
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._paths import (
    find_in_folder,
    folder_confidence,
    image_size,
    read_json,
    resolve_inside,
    walk_files,
)
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, is_image_file, safe_for_export

__all__ = ["CAMVID_COLORS", "NAME", "TASKS", "detect", "load", "save"]

NAME = "semantic_masks"
TITLE = "class-map PNGs"
TASKS = frozenset({Task.SEGMENTATION})
IMAGE_DIRS = ("images", "JPEGImages", "imgs", "img")
MASK_DIRS = ("masks", "labels", "gt", "SegmentationClass", "annotations_png")
IGNORE = 255
_MAX_CLASS_INDEX = 65535
"""Largest class index a label map may name (masks are 8- or 16-bit images)."""

CAMVID_COLORS: list[tuple[str, tuple[int, int, int]]] = [
    ("Void", (0, 0, 0)), ("Animal", (64, 128, 64)), ("Archway", (192, 0, 128)), ("Bicyclist", (0, 128, 192)),
    ("Bridge", (0, 128, 64)), ("Building", (128, 0, 0)), ("Car", (64, 0, 128)), ("CartLuggagePram", (64, 0, 192)),
    ("Child", (192, 128, 64)), ("Column_Pole", (192, 192, 128)), ("Fence", (64, 64, 128)),
    ("LaneMkgsDriv", (128, 0, 192)), ("LaneMkgsNonDriv", (192, 0, 64)), ("Misc_Text", (128, 128, 64)),
    ("MotorcycleScooter", (192, 0, 192)), ("OtherMoving", (128, 64, 64)), ("ParkingBlock", (64, 192, 128)),
    ("Pedestrian", (64, 64, 0)), ("Road", (128, 64, 128)), ("RoadShoulder", (128, 128, 192)),
    ("Sidewalk", (0, 0, 192)), ("SignSymbol", (192, 128, 128)), ("Sky", (128, 128, 128)),
    ("SUVPickupTruck", (64, 128, 192)), ("TrafficCone", (0, 0, 64)), ("TrafficLight", (0, 64, 64)),
    ("Train", (192, 64, 128)), ("Tree", (128, 128, 0)), ("Truck_Bus", (192, 128, 192)), ("Tunnel", (64, 0, 64)),
    ("VegetationMisc", (192, 192, 0)), ("Wall", (64, 192, 0)),
]
"""The CamVid 32-class colour map (``label_colors.txt`` of the dataset), Void first."""


def _files(folder: Path, limit: int | None = None, suffix: str = "") -> list[Path]:
    """Files under ``folder`` (recursive, sorted, hidden skipped) whose name ends with ``suffix``."""
    out = []
    for p in walk_files(folder):  # symbolic links leading out of the folder are not followed
        if p.name.lower().endswith(suffix) and not p.name.startswith("."):
            out.append(p)
            if limit is not None and len(out) >= limit:
                return out
    return out


def _pngs(folder: Path, limit: int | None = None) -> list[Path]:
    return _files(folder, limit, ".png")


def _pairs(root: Path) -> list[tuple[str | None, Path, Path]]:
    """(subset, image folder, mask folder) for the layouts this format reads."""
    if (root / "Annotations").is_dir() or (root / "ImageSets").is_dir():
        return []  # Pascal VOC: the voc format reads it
    img = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    msk = next((root / d for d in MASK_DIRS if (root / d).is_dir()), None)
    if img is not None and msk is not None and _pngs(msk, 1):
        return [(None, img, msk)]
    out: list[tuple[str | None, Path, Path]] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        annot = root / f"{child.name}annot"
        if annot.is_dir() and _pngs(annot, 1):
            out.append((child.name, child, annot))
    return out


def detect(path: Path) -> float:
    """0.85 for ``images/`` + ``masks/`` folders of PNG masks, or CamVid ``<split>`` + ``<split>annot`` pairs."""
    return folder_confidence(Path(path), _confidence)


def _confidence(root: Path) -> float:
    for _, img_dir, msk_dir in _pairs(root):
        images = [p for p in _files(img_dir, 50) if is_image_file(p)]
        if _match(images, img_dir, _pngs(msk_dir, 200), msk_dir):
            return 0.85
    return 0.0


# ---------------------------------------------------------------------------------------------------------- reading


def _rgb(values: Any) -> tuple[int, int, int]:
    """An (r, g, b) colour of a class map; ValueError unless three integers 0..255."""
    rgb = tuple(int(v) for v in values)
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"colour {list(values)[:4]!r} is not three values 0..255")
    return rgb  # type: ignore[return-value]


def _class_map(root: Path, camvid: bool, ds: FormatDataset) -> dict[tuple[int, int, int], int] | None:
    """Colour -> class index, filling ``ds.classes``; None when masks hold indices (names from classes.txt)."""
    names: dict[int, str] = {}
    colours: dict[tuple[int, int, int], int] = {}
    meta = root / "dataset_meta.json"
    if meta.is_file():
        doc = read_json(meta)
        for k, v in (doc.get("label_map") or {}).items():
            names[int(k)] = str(v)
        for i, c in enumerate(doc.get("segmentation_colors") or []):
            colours[_rgb(c[:3])] = i
        if doc.get("background_label") is not None:
            ds.meta["background_label"] = str(doc["background_label"])
    elif (root / "labelmap.txt").is_file():
        for line in (root / "labelmap.txt").read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            rgb = rest.split(":")[0]
            i = len(names)
            names[i] = name.strip()
            if rgb.strip():
                r, g, b = (int(v) for v in rgb.split(","))
                colours[_rgb((r, g, b))] = i
    elif (root / "labelmap.csv").is_file():  # Datumaro "kaggle image_mask": name,r,g,b per class, in index order
        rows = [r.split(",") for r in (root / "labelmap.csv").read_text(encoding="utf-8").splitlines() if r.strip()]
        for i, row in enumerate(rows[1:] if rows and rows[0][0].strip().lower() == "name" else rows):
            names[i] = row[0].strip()
            if len(row) >= 4:
                colours[_rgb(row[1:4])] = i
    elif (root / "label_colors.txt").is_file():
        for line in (root / "label_colors.txt").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 4:
                i = len(names)
                colours[_rgb(parts[:3])] = i
                names[i] = " ".join(parts[3:])
    elif camvid:
        for i, (name, c) in enumerate(CAMVID_COLORS):
            names[i], colours[c] = name, i
    elif (root / "classes.txt").is_file():
        for i, line in enumerate((root / "classes.txt").read_text(encoding="utf-8").splitlines()):
            if line.strip():
                names[i] = line.strip()
    too_big = sorted(i for i in names if not 0 <= i <= _MAX_CLASS_INDEX)
    if too_big:
        ds.problems.append(Problem(path=root.name, reason=(
            f"class indexes {str(too_big[:3])[:80]} are outside 0..{_MAX_CLASS_INDEX} (a mask holds 16-bit values "
            "at most); those names are ignored")))
        names = {i: n for i, n in names.items() if 0 <= i <= _MAX_CLASS_INDEX}
    for i in range(max(names, default=-1) + 1):
        ds.classes.append(names.get(i, f"class_{i}"))
    if colours:
        ds.meta["colors"] = {ds.classes[i]: list(c) for c, i in colours.items() if i < len(ds.classes)}
    return colours or None


def _strip_prefix(stems: list[str]) -> int:
    if len(stems) < 2:
        return 0
    prefix = os.path.commonprefix(stems)
    while prefix and prefix[-1].isalnum():  # keep whole tokens: "gt_0001", "gt_0002" -> "gt_"
        prefix = prefix[:-1]
    return len(prefix)


def _match(images: list[Path], img_dir: Path, masks: list[Path], msk_dir: Path) -> dict[Path, Path]:
    def key(p: Path, base: Path) -> str:
        return p.relative_to(base).with_suffix("").as_posix()

    by_key = {key(m, msk_dir): m for m in masks}
    out = {i: by_key[key(i, img_dir)] for i in images if key(i, img_dir) in by_key}
    if len(out) < len(images):
        ni, nm = _strip_prefix([i.stem for i in images]), _strip_prefix([m.stem for m in masks])
        stripped = {m.stem[nm:]: m for m in masks}
        for i in images:
            if i not in out and i.stem[ni:] in stripped:
                out[i] = stripped[i.stem[ni:]]
    return out


def _decode(path: Path, colours: dict[tuple[int, int, int], int] | None, ds: FormatDataset, where: str
            ) -> np.ndarray:
    with Image.open(path) as im:
        mode = im.mode
        arr = np.asarray(im)
        if mode == "P" or mode in ("L", "I", "I;16", "1"):
            return arr.astype(np.int32)
        rgb = np.asarray(im.convert("RGB")).astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    out = np.full(code.shape, IGNORE, dtype=np.int32)
    if colours is None:
        uniq = np.unique(code)
        colours = {}
        for c in uniq.tolist():
            name = f"rgb({c >> 16},{(c >> 8) & 255},{c & 255})"
            colours[(c >> 16, (c >> 8) & 255, c & 255)] = ds.class_index(name)
        ds.problems.append(Problem(path=where, reason="RGB mask without a colour map (dataset_meta.json, "
                                   "labelmap.txt); classes named by colour", action="repaired"))
    known = np.zeros(code.shape, dtype=bool)
    for (r, g, b), idx in colours.items():
        hit = code == ((r << 16) | (g << 8) | b)
        out[hit] = idx
        known |= hit
    if not known.all():
        bad = sorted({(c >> 16, (c >> 8) & 255, c & 255) for c in np.unique(code[~known]).tolist()})[:5]
        ds.problems.append(Problem(path=where, reason=f"{int((~known).sum())} pixels have colours {bad} that no "
                                   "class has; marked unlabelled", action="repaired"))
    return out


def load(path: Path) -> FormatDataset:
    """Read image/mask folder pairs under ``path``."""
    path = Path(path)
    pairs = find_in_folder(path, _pairs, fmt=NAME, reason="expected images/ and masks/ folders (mask PNGs named "
                           "like the images), or CamVid train/ + trainannot/ folder pairs")
    ds = FormatDataset(task=Task.SEGMENTATION)
    try:
        colours = _class_map(path, camvid=pairs[0][0] is not None, ds=ds)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise FormatError(path, NAME, f"unreadable class map: {e}; fix dataset_meta.json / labelmap.txt") from e
    for subset, img_dir, msk_dir in pairs:
        images = [p for p in _files(img_dir) if is_image_file(p)]
        masks = _pngs(msk_dir)
        matched = _match(images, img_dir, masks, msk_dir)
        for m in sorted(set(masks) - set(matched.values())):
            ds.problems.append(Problem(path=m.relative_to(path).as_posix(), reason="mask without an image"))
        for image in images:
            rel = image.relative_to(img_dir).as_posix()
            name = f"{subset}/{rel}" if subset else rel
            where = image.relative_to(path).as_posix()
            sample = Sample(name=name, image_path=image, subset=subset)
            mask_path = matched.get(image)
            if mask_path is None:
                ds.problems.append(Problem(path=where, reason="no mask for this image", action="kept unannotated"))
                ds.samples.append(sample)
                continue
            try:
                mask = _decode(mask_path, colours, ds, mask_path.relative_to(path).as_posix())
            except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
                ds.problems.append(Problem(path=mask_path.relative_to(path).as_posix(), reason=f"unreadable: {e}"))
                continue
            size = image_size(image)
            if size is not None and size != (mask.shape[1], mask.shape[0]):
                ds.problems.append(Problem(path=where, reason=f"mask is {mask.shape[1]}x{mask.shape[0]}, image is "
                                           f"{size[0]}x{size[1]}"))
                continue
            top = int(mask[mask != IGNORE].max(initial=-1))
            while len(ds.classes) <= top:
                ds.classes.append(f"class_{len(ds.classes)}")
            sample.width, sample.height = mask.shape[1], mask.shape[0]
            sample.annotation = SemanticMask(mask, IGNORE)
            ds.samples.append(sample)
    return ds


# ---------------------------------------------------------------------------------------------------------- writing


def _palette(dataset: FormatDataset, classes: list[str]) -> list[tuple[int, int, int]]:
    known = dataset.meta.get("colors") or {}
    out = []
    for i, name in enumerate(classes):
        c = known.get(name)
        if c is None:  # the Pascal VOC colour map: distinct, stable colours per index
            r = g = b = 0
            cid = i
            for j in range(8):
                r |= ((cid >> 0) & 1) << (7 - j)
                g |= ((cid >> 1) & 1) << (7 - j)
                b |= ((cid >> 2) & 1) << (7 - j)
                cid >>= 3
            c = (r, g, b)
        out.append(tuple(int(v) for v in c))
    return out  # type: ignore[return-value]


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``out/images/``, ``out/masks/<stem>.png`` (palette PNGs of class indices) and ``dataset_meta.json``."""
    out = Path(out)
    dataset = safe_for_export(dataset)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    # mask index 0 is the background between instances: when an instance class sits at index 0 (DSB's one class
    # "nucleus"), a "background" class goes first and every class index moves up by one
    shift = int(any(isinstance(s.annotation, Instances) and bool((s.annotation.boxes.class_id == 0).any())
                    for s in dataset.samples))
    classes = ["background"] * shift + list(dataset.classes)
    if len(classes) > IGNORE:
        raise FormatError(out, NAME, f"{len(classes)} classes do not fit 8-bit masks (at most {IGNORE}, 255 is "
                          "'unlabelled'); merge classes or export another format")
    colours = _palette(dataset, classes)
    flat = [v for c in colours for v in c]
    flat += [0] * (3 * 256 - len(flat))
    flat[3 * IGNORE: 3 * IGNORE + 3] = [255, 255, 255]
    for sample in dataset.samples:
        copy_image(sample, out / "images")
        ann = sample.annotation
        if ann is None:
            continue
        if isinstance(ann, Instances):
            w, h = (sample.width, sample.height) if sample.width and sample.height else (
                image_size(sample.image_path) or (0, 0))
            mask = np.zeros((h, w), dtype=np.int32)
            for i in range(len(ann)):
                mask[ann.mask(i, h, w)] = int(ann.boxes.class_id[i]) + shift
            ann = SemanticMask(mask, IGNORE)
        elif isinstance(ann, SemanticMask) and shift:
            ann = SemanticMask(np.where(ann.mask == ann.ignore_index, ann.ignore_index, ann.mask + shift),
                               ann.ignore_index)
        if not isinstance(ann, SemanticMask):
            raise FormatError(sample.name, NAME, f"semantic masks hold per-pixel classes; a {type(ann).__name__} "
                              "annotation has none. Export a segmentation version")
        m = ann.mask.copy()
        m[m == ann.ignore_index] = IGNORE
        im = Image.fromarray(m.astype(np.uint8), "P")
        im.putpalette(flat)
        dest = resolve_inside(out / "masks", Path(sample.name).with_suffix(".png").as_posix())
        dest.parent.mkdir(parents=True, exist_ok=True)
        im.save(dest)
    meta = {"label_map": {str(i): n for i, n in enumerate(classes)},
            "segmentation_colors": [list(c) for c in colours],
            "background_label": str(dataset.meta.get("background_label", "0"))}
    (out / "dataset_meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
