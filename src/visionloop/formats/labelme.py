"""LabelMe JSON (the ``labelme`` desktop tool): one ``.json`` per image, usually beside it.

Each file holds ``imagePath`` (relative to the JSON file), ``imageHeight`` / ``imageWidth``, optional ``imageData``
(base64 image, used when the image file is missing; kept in memory as ``Sample.image_data``, never written to
a temporary folder), image-level ``flags`` (``{name: bool}``) and ``shapes``:
``rectangle`` (two corners), ``polygon``, ``circle`` (centre and a point on the rim; kept as a 32-point polygon),
``mask`` (base64 PNG of the box between its two points, inclusive). ``line``, ``linestrip``, ``point`` and
``points`` have no area and are skipped with a problem. Shapes with the same ``group_id`` and label are one instance.
When no file has any shape, the true ``flags`` are the image's classes (classification or tagging).

The output of labelme's ``labelme2voc.py`` (semantic segmentation) is read too: ``class_names.txt`` (one class per
line, ``_background_`` first), ``JPEGImages/<stem>.jpg`` and the palette PNGs of class indexes in
``SegmentationClass/<stem>.png`` (``SegmentationClassPNG/`` in labelme < 5); 255 is unlabelled.

``save`` writes ``<name>`` and ``<name stem>.json`` side by side, with ``imageData`` null.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import FormatError, ImageError
from visionloop.core.imageio import probe
from visionloop.core.task import Task
from visionloop.formats._fields import (
    ITEM_ERRORS,
    FieldError,
    as_dict,
    as_float,
    as_int,
    as_key,
    as_list,
    check_canvas,
    describe,
    read_json_file,
)
from visionloop.formats._geometry import (
    Shape,
    annotation_shapes,
    clip_shapes,
    ellipse_ring,
    rect_ring,
    shapes_to_annotation,
)
from visionloop.formats._paths import (
    UnsafePathError,
    head,
    image_size,
    resolve_inside,
    safe_relative_name,
    walk_files,
)
from visionloop.formats.base import (
    IMAGE_EXTENSIONS,
    FormatDataset,
    Problem,
    Sample,
    copy_image,
    is_image_file,
    safe_for_export,
)

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "labelme"
TITLE = "LabelMe JSON"
TASKS = frozenset({Task.DETECTION, Task.SEGMENTATION, Task.CLASSIFICATION, Task.TAGGING})
LABELME_VERSION = "5.4.1"
_NO_AREA = {"line", "linestrip", "point", "points"}


def _looks_like(path: Path) -> bool:
    text = head(path, 16384)
    return text.startswith("{") and '"shapes"' in text and ('"imagePath"' in text or '"imageHeight"' in text)


def _json_files(path: Path, *, limit: int | None = None) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix.lower() == ".json" else []
    out = []
    for p in walk_files(path):  # sorted, folder by folder; links leading out of the folder are not read
        if p.suffix.lower() == ".json" and not any(part.startswith(".") for part in p.relative_to(path).parts):
            out.append(p)
            if limit is not None and len(out) >= limit:
                break
    return out


def _voc_export(path: Path) -> Path | None:
    """The mask folder of a ``labelme2voc.py`` output at ``path``, or None."""
    if not path.is_dir() or not (path / "class_names.txt").is_file() or not (path / "JPEGImages").is_dir():
        return None
    for name in ("SegmentationClassPNG", "SegmentationClass"):
        folder = path / name
        if folder.is_dir() and any(folder.glob("*.png")):
            return folder
    return None


def detect(path: Path) -> float:
    """0.9 when the JSON files under ``path`` (the first 20 looked at) include LabelMe files; 0.95 for the output of
    ``labelme2voc.py`` (above the 0.85 of plain image/mask folders, so its class names are kept)."""
    path = Path(path)
    if not path.exists():
        return 0.0
    if _voc_export(path) is not None:
        return 0.95
    files = _json_files(path, limit=20)
    return 0.9 if any(_looks_like(p) for p in files) else 0.0


# ---------------------------------------------------------------------------------------------------------- reading


def _decode_b64(data: Any, field: str) -> bytes:
    if not isinstance(data, str):
        raise FieldError(field, "a base64 string", data)
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as e:
        raise FieldError(field, "base64 data", data) from e


def _embedded_image(data: Any) -> tuple[bytes, tuple[int, int]]:
    """The bytes and (width, height) of the image in ``imageData``; ImageError when it is no image, truncated or
    over the decompression-bomb limit. Kept in memory (``Sample.image_data``): nothing is written anywhere."""
    raw = _decode_b64(data, "imageData")
    info = probe(raw, name="imageData")
    return raw, (info.width, info.height)


def _find_image(doc: dict[str, Any], src: Path, root: Path, ds: FormatDataset, where: str) -> Path | None:
    """The image ``imagePath`` names (relative to the JSON file, never outside ``root``), else the one beside the JSON
    file with its stem; an ``imagePath`` leading out of the dataset is reported and only its file name looked for."""
    ref = doc.get("imagePath")
    ref = ref.replace("\\", "/") if isinstance(ref, str) else ""
    folder = src.parent.relative_to(root).as_posix() if src.parent.is_relative_to(root) else ""
    names = []
    if ref:
        try:
            names.append(safe_relative_name(f"{folder}/{ref}" if folder not in ("", ".") else ref))
        except UnsafePathError as e:
            ds.problems.append(Problem(path=where, action="repaired", reason=(
                f"imagePath {describe(ref)} points outside the dataset ({e.reason}); only its file name is looked for "
                "beside the JSON file")))
        base = ref.rsplit("/", 1)[-1]
        if base not in ("", ".", ".."):
            names.append(f"{folder}/{base}" if folder not in ("", ".") else base)
    names += [f"{folder}/{src.stem}{ext}" if folder not in ("", ".") else f"{src.stem}{ext}"
              for ext in sorted(IMAGE_EXTENSIONS)]
    for name in dict.fromkeys(names):
        try:
            path = resolve_inside(root, name)
            if path.is_file():
                return path
        except (UnsafePathError, OSError):  # unsafe, or a name too long for the file system
            continue
    return None


def _points(shape: dict[str, Any]) -> list[tuple[float, float]]:
    pts = []
    for p in as_list(shape.get("points"), "points"):
        if not isinstance(p, list) or len(p) != 2:
            raise FieldError("points", "a list of [x, y] pairs", p)
        pts.append((as_float(p[0], "point x"), as_float(p[1], "point y")))
    return pts


def _mask_shape(shape: dict[str, Any], cid: int, width: int, height: int) -> Shape:
    if not width or not height:
        raise ValueError("mask shape in a file without imageWidth/imageHeight")
    check_canvas(width, height, "imageWidth x imageHeight")
    pts = _points(shape)
    if not pts:
        raise FieldError("points", "the mask's top-left corner", shape.get("points"))
    x1, y1 = pts[0]
    raw = _decode_b64(shape.get("mask"), "mask")
    probe(raw, name="mask", max_pixels=width * height)
    with Image.open(io.BytesIO(raw)) as im:
        crop = np.asarray(im.convert("L")) > 0
    full = np.zeros((height, width), dtype=bool)
    x1, y1 = max(0, int(round(x1))), max(0, int(round(y1)))
    h, w = crop[: max(0, height - y1), : max(0, width - x1)].shape
    full[y1:y1 + h, x1:x1 + w] = crop[:h, :w]
    return Shape(class_id=cid, rle=RLE.encode(full))


def _shape(shape: dict[str, Any], cid: int, width: int, height: int) -> Shape:
    kind = shape.get("shape_type") or "polygon"
    if kind == "mask":
        return _mask_shape(shape, cid, width, height)
    pts = _points(shape)
    if kind == "rectangle":
        if len(pts) < 2:
            raise ValueError("rectangle needs 2 points")
        xs, ys = [p[0] for p in pts[:2]], [p[1] for p in pts[:2]]
        return Shape(class_id=cid, xyxy=(min(xs), min(ys), max(xs), max(ys)))
    if kind == "polygon":
        if len(pts) < 3:
            raise ValueError(f"polygon with {len(pts)} points, needs >= 3")
        return Shape(class_id=cid, rings=[[v for p in pts for v in p]])
    if kind == "circle":
        if len(pts) < 2:
            raise ValueError("circle needs its centre and a point on the rim")
        r = math.dist(pts[0], pts[1])
        return Shape(class_id=cid, rings=[ellipse_ring(pts[0][0], pts[0][1], r, r)])
    raise ValueError(f"unknown shape_type {describe(kind)}")


def _image_flags(doc: dict[str, Any], ds: FormatDataset, where: str) -> dict[str, bool]:
    try:
        flags = as_dict(doc.get("flags"), "flags")
    except FieldError as e:
        ds.problems.append(Problem(path=where, reason=f"{e}; image flags ignored"))
        return {}
    return {str(k)[:256]: bool(v) for k, v in flags.items()}


def _group_shape(shape: Shape, raw: dict[str, Any], groups: dict[tuple[int, Any], Shape]) -> bool:
    """Record ``shape`` in its ``group_id`` group; True when it was merged into the group's first shape."""
    group = raw.get("group_id")
    if group is None:
        return False
    group = as_key(group, "group_id")
    key = (shape.class_id, group)
    if key in groups and groups[key].rle is None and shape.rle is None:
        first = groups[key]
        if first.rings is None and first.xyxy is not None:
            first.rings, first.xyxy = [rect_ring(*first.xyxy)], None
        if first.rings is not None:
            first.rings.extend(shape.rings or ([rect_ring(*shape.xyxy)] if shape.xyxy else []))
        return True
    groups[key] = shape
    shape.attributes["group_id"] = group
    return False


def _read_shapes(doc: dict[str, Any], sample: Sample, ds: FormatDataset, where: str) -> list[Shape]:
    shapes: list[Shape] = []
    groups: dict[tuple[int, Any], Shape] = {}
    for k, raw in enumerate(doc.get("shapes") or []):
        try:
            raw = as_dict(raw, "shape")
            kind = raw.get("shape_type") or "polygon"
            if kind in _NO_AREA:
                ds.problems.append(Problem(path=where, reason=f"shape {k} is a {kind} (no area); visionloop keeps "
                                           "rectangles, polygons, circles and masks"))
                continue
            label = raw.get("label")
            if not isinstance(label, str | int) or not str(label).strip():
                ds.problems.append(Problem(path=where, reason=f"shape {k} has no label ({describe(label)})"))
                continue
            if raw.get("group_id") is not None:
                as_key(raw["group_id"], "group_id")
            shape_flags = as_dict(raw.get("flags"), "shape flags")
            shape = _shape(raw, ds.class_index(str(label).strip()[:256]), sample.width or 0, sample.height or 0)
        except ITEM_ERRORS as e:
            ds.problems.append(Problem(path=where, reason=f"shape {k} skipped: {e}"))
            continue
        if shape_flags:
            shape.attributes["flags"] = {str(f): bool(v) for f, v in shape_flags.items()}
        if raw.get("description"):
            shape.attributes["description"] = str(raw["description"])[:4096]
        if not _group_shape(shape, raw, groups):
            shapes.append(shape)
    return shapes


def _read_file(src: Path, root: Path, doc: dict[str, Any], ds: FormatDataset) -> tuple[Sample, list[Shape], list[str]]:
    where = src.relative_to(root).as_posix() if src.is_relative_to(root) else str(src)
    w, h = doc.get("imageWidth"), doc.get("imageHeight")
    try:
        width = as_int(w, "imageWidth") if w is not None else 0
        height = as_int(h, "imageHeight") if h is not None else 0
    except FieldError as e:  # measured from the image instead; the shapes are kept
        ds.problems.append(Problem(path=where, action="repaired", reason=f"{e}; the image's own size is used"))
        width = height = 0
    image_path = _find_image(doc, src, root, ds, where)
    ref_text = doc.get("imagePath") if isinstance(doc.get("imagePath"), str) else None
    image_data, embedded_size = None, None
    if image_path is None and doc.get("imageData"):
        try:
            image_data, embedded_size = _embedded_image(doc["imageData"])
            ds.problems.append(Problem(path=where, reason=f"image {describe(ref_text)} missing; used the "
                                       "imageData embedded in the JSON", action="repaired"))
        except (FieldError, ImageError) as e:
            ds.problems.append(Problem(path=where, reason=f"embedded imageData is not a usable image: {e}"))
    if image_path is None and image_data is None:
        ds.problems.append(Problem(path=where, reason=f"image {describe(ref_text)} not found beside {src.name}",
                                   action="kept without image"))
    ref = Path((ref_text or src.with_suffix(".jpg").name).replace("\\", "/")).name[:255]
    if image_path is not None and image_path.is_relative_to(root):
        name = image_path.relative_to(root).as_posix()
    else:
        rel = src.relative_to(root).parent.as_posix() if src.is_relative_to(root) else ""
        name = f"{rel}/{ref}" if rel not in ("", ".") else ref
    sample = Sample(name=name, image_path=image_path, image_data=image_data, width=width or None,
                    height=height or None)
    if image_data is not None:
        sample.meta["annotation_file"] = where
    if not width:
        size = embedded_size or image_size(image_path)
        if size:
            sample.width, sample.height = size
    shapes = _read_shapes(doc, sample, ds, where)
    image_flags = _image_flags(doc, ds, where)
    flags = [k for k, v in image_flags.items() if v]
    if image_flags:
        sample.meta["flag_names"] = list(image_flags)
    return sample, clip_shapes(shapes, sample.width, sample.height, ds, where), flags


def _report_broken(path: Path, labelme_files: set[Path], ds: FormatDataset) -> None:
    """Report the other JSON files of a LabelMe folder that do not parse: a truncated, emptied or garbled LabelMe
    file no longer looks like one, and must not vanish without a word."""
    for other in _json_files(path):
        if other in labelme_files:
            continue
        try:
            read_json_file(other)
        except (OSError, ValueError) as e:
            ds.problems.append(Problem(path=str(other), reason=f"unreadable JSON file (a truncated or damaged LabelMe "
                                       f"file?) skipped: {e}"))


def _class_mask(mask_path: Path, n_classes: int, where: str, ds: FormatDataset) -> SemanticMask | None:
    raw = mask_path.read_bytes()
    probe(raw, name=where)
    with Image.open(io.BytesIO(raw)) as im:
        if im.mode not in ("P", "L"):
            raise FieldError("mask", "a palette or grey PNG of class indexes", f"a {im.mode} image")
        mask = np.asarray(im).astype(np.int32)
    unknown = (mask >= n_classes) & (mask != 255)
    if unknown.any():
        ds.problems.append(Problem(path=where, action="repaired", reason=(
            f"{int(unknown.sum())} pixels hold class indexes {sorted(np.unique(mask[unknown]).tolist())[:5]} beyond "
            f"the {n_classes} classes of class_names.txt; marked unlabelled")))
        mask[unknown] = 255
    return SemanticMask(mask, 255)


def _load_voc_export(path: Path, masks: Path) -> FormatDataset:
    """Read a ``labelme2voc.py`` output folder (see the module docstring)."""
    ds = FormatDataset(task=Task.SEGMENTATION)
    for line in (path / "class_names.txt").read_text(encoding="utf-8-sig").splitlines():
        name = line.strip()
        if name and name != "__ignore__":
            ds.classes.append(name[:256])
    if not ds.classes:
        raise FormatError(path, NAME, "class_names.txt lists no class")
    ds.meta["background_label"] = ds.classes[0]
    by_stem = {p.stem: p for p in sorted(masks.glob("*.png"))}
    for image in sorted(p for p in (path / "JPEGImages").iterdir() if is_image_file(p)):
        sample = Sample(name=image.name, image_path=image)
        mask_path = by_stem.pop(image.stem, None)
        where = f"{masks.name}/{image.stem}.png"
        if mask_path is None:
            ds.problems.append(Problem(path=f"JPEGImages/{image.name}", reason=f"no mask {where}",
                                       action="kept unannotated"))
        else:
            try:
                sample.annotation = _class_mask(mask_path, len(ds.classes), where, ds)
                sample.height, sample.width = sample.annotation.mask.shape
            except ITEM_ERRORS as e:
                ds.problems.append(Problem(path=where, reason=f"unreadable mask: {e}", action="kept unannotated"))
        ds.samples.append(sample)
    for stem in by_stem:
        ds.problems.append(Problem(path=f"{masks.name}/{stem}.png", reason="mask without an image in JPEGImages/"))
    return ds


def load(path: Path) -> FormatDataset:
    """Read every LabelMe JSON file under ``path`` (a folder, searched recursively, or one file), or the output of
    ``labelme2voc.py``."""
    path = Path(path)
    masks = _voc_export(path)
    if masks is not None:
        return _load_voc_export(path, masks)
    root = path if path.is_dir() else path.parent
    files = [p for p in _json_files(path) if _looks_like(p)] if path.exists() else []
    if not files:
        raise FormatError(path, NAME, "expected LabelMe JSON files (with 'shapes' and 'imagePath') in the folder")
    ds = FormatDataset(task=Task.DETECTION)
    _report_broken(path, set(files), ds)
    pending = []
    for src in files:
        try:
            doc = read_json_file(src)
            if not isinstance(doc, dict) or not isinstance(doc.get("shapes", []), list):
                raise ValueError("not a LabelMe object with a 'shapes' list")
            pending.append(_read_file(src, root, doc, ds))
        except ITEM_ERRORS as e:
            ds.problems.append(Problem(path=str(src), reason=f"unreadable LabelMe file: {e}"))
    shapes_all = [s for _, shapes, _ in pending for s in shapes]
    has_flags = any(flags for _, _, flags in pending)
    if any(not s.is_rectangle for s in shapes_all):
        ds.task = Task.SEGMENTATION
    elif shapes_all or not has_flags:
        ds.task = Task.DETECTION
    else:
        ds.task = Task.TAGGING if any(len(f) > 1 for _, _, f in pending) else Task.CLASSIFICATION
        for sample, _, _ in pending:
            for name in sample.meta.get("flag_names", []):
                ds.class_index(name)
    for sample, shapes, flags in pending:
        names = sample.meta.pop("flag_names", [])
        if ds.task in (Task.DETECTION, Task.SEGMENTATION):
            sample.annotation = shapes_to_annotation(shapes, segmentation=ds.task == Task.SEGMENTATION)
            if flags:
                sample.meta["flags"] = {n: n in flags for n in names}
        elif ds.task == Task.TAGGING:
            sample.annotation = Tags(frozenset(ds.class_index(f) for f in flags))
        elif flags:
            sample.annotation = Label(ds.class_index(flags[0]))
        ds.samples.append(sample)
    return ds


# ---------------------------------------------------------------------------------------------------------- writing


def _pts(ring: list[float]) -> list[list[float]]:
    return [[float(ring[i]), float(ring[i + 1])] for i in range(0, len(ring), 2)]


def _mask_b64(mask: np.ndarray) -> tuple[list[list[float]], str]:
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if len(xs) else (0, 0, 0, 0)
    buf = io.BytesIO()
    Image.fromarray(mask[y1:y2 + 1, x1:x2 + 1].astype(np.uint8) * 255, "L").save(buf, format="PNG")
    return [[float(x1), float(y1)], [float(x2), float(y2)]], base64.b64encode(buf.getvalue()).decode("ascii")


def _shape_docs(shape: Shape, classes: list[str], group: int) -> list[dict[str, Any]]:
    attrs = dict(shape.attributes)
    base = {"label": classes[shape.class_id], "description": str(attrs.pop("description", "")),
            "flags": dict(attrs.pop("flags", {}) or {}), "mask": None}
    group_id = attrs.pop("group_id", None)
    if shape.rle is not None:
        pts, b64 = _mask_b64(shape.rle.decode())
        return [{**base, "points": pts, "group_id": group_id, "shape_type": "mask", "mask": b64}]
    if shape.rings is not None:
        gid = group_id if group_id is not None else (group if len(shape.rings) > 1 else None)
        return [{**base, "points": _pts(r), "group_id": gid, "shape_type": "polygon"} for r in shape.rings]
    assert shape.xyxy is not None
    x1, y1, x2, y2 = shape.xyxy
    return [{**base, "points": [[x1, y1], [x2, y2]], "group_id": group_id, "shape_type": "rectangle"}]


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``out/<name>`` and ``out/<name stem>.json`` per sample (LabelMe 5 layout)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = safe_for_export(dataset, per_subset=False)  # one folder for all: names from data files made safe
    for sample in dataset.samples:
        ann = sample.annotation
        size = (sample.width, sample.height) if sample.width and sample.height else image_size(sample.image_path)
        if size is None and isinstance(ann, SemanticMask):
            size = (ann.mask.shape[1], ann.mask.shape[0])
        flags: dict[str, bool] = dict(sample.meta.get("flags", {}))
        shapes: list[Shape] = []
        if isinstance(ann, Label | Tags):
            present = {ann.class_id} if isinstance(ann, Label) else set(ann.class_ids)
            flags = {name: i in present for i, name in enumerate(dataset.classes)}
        elif isinstance(ann, Boxes | Instances):
            shapes = annotation_shapes(ann)
        elif isinstance(ann, SemanticMask):
            shapes = [Shape(class_id=c, rle=RLE.encode(ann.mask == c)) for c in ann.class_ids()]
        docs = [d for g, s in enumerate(shapes, start=1) for d in _shape_docs(s, dataset.classes, 1000 + g)]
        dest = copy_image(sample, out)
        doc = {"version": LABELME_VERSION, "flags": flags, "shapes": docs, "imagePath": dest.name, "imageData": None,
               "imageHeight": size[1] if size else None, "imageWidth": size[0] if size else None}
        json_path = dest.with_suffix(".json")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        tmp.replace(json_path)
