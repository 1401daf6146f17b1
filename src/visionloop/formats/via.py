"""VGG Image Annotator (VIA 2): project JSON, annotation JSON export, and CSV export.

- Project JSON: ``{"_via_settings": ..., "_via_img_metadata": {key: entry}, "_via_attributes": ...}``.
- Annotation JSON export: ``{key: entry}`` where ``key`` is file name + size (``"img.jpg12345"``).
- Entry: ``{"filename", "size", "file_attributes", "regions": [{"shape_attributes", "region_attributes"}]}``
  (VIA 1 keeps ``regions`` as a dict ``{"0": region}``; both are read).
- CSV export: ``filename,file_size,file_attributes,region_count,region_id,region_shape_attributes,region_attributes``
  with the two attribute columns as JSON.

Shapes: ``rect`` (x, y, width, height), ``polygon`` (all_points_x / all_points_y), ``circle`` and ``ellipse`` (kept as
32-point polygons); ``polyline`` and ``point`` are skipped with a problem. The class is the region attribute that
every region has when there is only one, else ``label``, ``class``, ``name``, ``type`` or ``category``; checkbox
attributes (``{"cat": true}``) give their first true option. Other region attributes are kept.

Images without regions whose file attributes name a class (``label``, ``class``, ... as text or dropdown, or the only
checkbox attribute) are classification, or tagging when an image has several; an image whose regions all lack a
class is imported unlabelled (not as an image with no objects).

``save`` writes ``out/via_project.json`` (a VIA 2 project, class in region attribute ``label``; image classes in the
checkbox file attribute ``label``) and the images.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._fields import (
    ITEM_ERRORS,
    FieldError,
    as_dict,
    as_float,
    as_list,
    as_text,
    describe,
    parse_json,
    read_json_file,
)
from visionloop.formats._geometry import (
    Shape,
    annotation_shapes,
    clip_shapes,
    ellipse_ring,
    mask_to_rings,
    shapes_to_annotation,
)
from visionloop.formats._paths import UnsafePathError, candidate_files, head, image_size
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, find_image, safe_for_export

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "via"
TITLE = "VGG Image Annotator (VIA) JSON"
TASKS = frozenset({Task.DETECTION, Task.SEGMENTATION, Task.CLASSIFICATION, Task.TAGGING})
CSV_HEADER = ["filename", "file_size", "file_attributes", "region_count", "region_id", "region_shape_attributes",
              "region_attributes"]
CLASS_KEYS = ("label", "class", "name", "type", "category")
_NO_AREA = {"polyline", "point"}


def _json_like(path: Path) -> bool:
    text = head(path)
    if not text.startswith("{"):
        return False
    return "_via_img_metadata" in text or ('"filename"' in text and '"regions"' in text)


def _csv_like(path: Path) -> bool:
    first = head(path, 1024).splitlines()[:1]
    return bool(first) and [c.strip().strip('"#') for c in first[0].split(",")][:7] == CSV_HEADER


def _files(path: Path) -> list[Path]:
    return [p for p in candidate_files(path, ".json", limit=200) if _json_like(p)] + [
        p for p in candidate_files(path, ".csv", limit=200) if _csv_like(p)
    ]


def detect(path: Path) -> float:
    """0.95 for a VIA project/export JSON or VIA CSV export (a file, or one at the top level of a folder)."""
    return 0.95 if _files(Path(path)) else 0.0


# ---------------------------------------------------------------------------------------------------------- reading


def _entries_from_json(doc: Any) -> list[dict[str, Any]]:
    meta = doc.get("_via_img_metadata", doc) if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        raise ValueError("expected an object of images keyed by file name and size")
    out = []
    for key, entry in meta.items():
        if isinstance(entry, dict) and "filename" in entry:
            regions = entry.get("regions") or []
            if isinstance(regions, dict):
                regions = [regions[k] for k in sorted(regions, key=lambda k: int(k) if str(k).isdigit() else 0)]
            out.append({**entry, "regions": regions, "_key": key})
        else:
            out.append({"_key": key, "_bad": f"entry {describe(key)} is not an object with a 'filename'"})
    return out


def _csv_json(text: str) -> Any:
    """A JSON cell of the CSV export; a cell that does not parse is kept as its text (reported per region)."""
    try:
        return parse_json(text or "{}")
    except ValueError:
        return text


def _entries_from_csv(path: Path) -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        next(rows, None)
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) < 7:
                raise ValueError(f"line {line} has {len(row)} columns, expected 7 ({','.join(CSV_HEADER)})")
            name, size = row[0], row[1]
            entry = entries.setdefault(name + size, {"filename": name, "size": size, "regions": [],
                                                     "file_attributes": _csv_json(row[2])})
            shape_attrs = _csv_json(row[5])
            if shape_attrs:
                entry["regions"].append({"shape_attributes": shape_attrs,
                                         "region_attributes": _csv_json(row[6])})
    return list(entries.values())


def _class_key(entries: list[dict[str, Any]], doc_attrs: dict[str, Any] | None) -> str | None:
    counts: Counter[str] = Counter()
    for e in entries:
        regions = e.get("regions")
        for r in regions if isinstance(regions, list) else []:
            attrs = r.get("region_attributes") if isinstance(r, dict) else None
            for k, v in (attrs if isinstance(attrs, dict) else {}).items():
                if v not in (None, "", {}, []):
                    counts[str(k)] += 1
    if len(counts) == 1:
        return next(iter(counts))
    lower = {k.lower(): k for k in counts}
    for k in CLASS_KEYS:
        if k in lower:
            return lower[k]
    if doc_attrs:
        for k, spec in doc_attrs.items():
            if isinstance(spec, dict) and spec.get("type") in ("dropdown", "radio") and k in counts:
                return k
    return counts.most_common(1)[0][0] if counts else None


def _class_name(value: Any) -> str | None:
    if isinstance(value, dict):
        value = next((k for k, v in value.items() if v), None)
    elif isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    name = str(value).strip()
    return name or None


def _num(sa: dict[str, Any], key: str) -> float:
    return as_float(sa.get(key), key)


def _shape(sa: dict[str, Any], cid: int) -> Shape:
    kind = sa.get("name")
    if kind == "rect":
        x, y, w, h = _num(sa, "x"), _num(sa, "y"), _num(sa, "width"), _num(sa, "height")
        if w < 0 or h < 0:
            raise ValueError(f"rect with negative size {w}x{h}")
        return Shape(class_id=cid, xyxy=(x, y, x + w, y + h))
    if kind == "polygon":
        xs, ys = as_list(sa.get("all_points_x"), "all_points_x"), as_list(sa.get("all_points_y"), "all_points_y")
        if len(xs) != len(ys) or len(xs) < 3:
            raise ValueError(f"polygon with {len(xs)} x and {len(ys)} y values, needs >= 3 of each")
        return Shape(class_id=cid, rings=[[as_float(v, "polygon point") for p in zip(xs, ys, strict=True)
                                           for v in p]])
    if kind == "circle":
        r = _num(sa, "r")
        return Shape(class_id=cid, rings=[ellipse_ring(_num(sa, "cx"), _num(sa, "cy"), r, r)])
    if kind == "ellipse":
        theta = as_float(sa.get("theta") or 0, "theta", lo=-1e4, hi=1e4)
        return Shape(class_id=cid, rings=[ellipse_ring(_num(sa, "cx"), _num(sa, "cy"), _num(sa, "rx"), _num(sa, "ry"),
                                                       theta)])
    raise ValueError(f"unknown region shape {describe(kind)}")


def _entry_sample(entry: dict[str, Any], src: Path, base: Path, key: str | None, ds: FormatDataset
                  ) -> tuple[Sample, list[Shape], bool]:
    """The entry's sample, its shapes, and whether it is labelled (False when it has regions but none has a class:
    an image whose objects are drawn but not named is not a negative)."""
    ref = as_text(entry.get("filename"), "filename", max_chars=1024)
    name = Path(urlparse(ref).path).name if "://" in ref else ref.replace("\\", "/").lstrip("/")
    where = f"{src.name}:{name}"
    try:
        image_path = find_image(base, name, search=("", "images"))
    except UnsafePathError as e:  # absolute or climbing out: only its file name is looked for, inside the dataset
        name = name.rsplit("/", 1)[-1]
        ds.problems.append(Problem(path=where, action="repaired", reason=(
            f"filename {describe(ref)} points outside the dataset ({e.reason}); looked for {name!r} inside it")))
        image_path = None
    image_path = image_path or find_image(base, Path(name).name, search=("", "images"))
    sample = Sample(name=name, image_path=image_path)
    try:
        file_attributes = as_dict(entry.get("file_attributes"), "file_attributes")
    except FieldError as e:
        ds.problems.append(Problem(path=where, action="ignored", reason=str(e)))
        file_attributes = {}
    if file_attributes:
        sample.meta["file_attributes"] = file_attributes
    try:
        regions = as_list(entry.get("regions"), "regions")
    except FieldError as e:  # the image is kept, unlabelled: its regions cannot be read
        ds.problems.append(Problem(path=where, action="kept unlabelled", reason=f"{e}; image kept without annotation"))
        return sample, [], False
    if image_path is None:
        ds.problems.append(Problem(path=where, reason=f"image {ref!r} not found next to {src.name} or in images/",
                                   action="kept without image"))
    else:
        size = image_size(image_path)
        if size:
            sample.width, sample.height = size
    shapes = []
    unnamed = 0
    for k, region in enumerate(regions):
        try:
            region = as_dict(region, "region")
            sa = as_dict(region.get("shape_attributes"), "shape_attributes")
            ra = dict(as_dict(region.get("region_attributes"), "region_attributes"))
        except FieldError as e:
            ds.problems.append(Problem(path=where, reason=f"region {k} skipped: {e}"))
            continue
        if sa.get("name") in _NO_AREA:
            ds.problems.append(Problem(path=where, reason=f"region {k} is a {sa.get('name')} (no area); visionloop "
                                       "keeps rect, polygon, circle and ellipse regions"))
            continue
        cls = _class_name(ra.pop(key, None)) if key else None
        if cls is None:
            unnamed += 1
            ds.problems.append(Problem(path=where, reason=f"region {k} has no class in region attribute {key!r}"))
            continue
        try:
            shape = _shape(sa, ds.class_index(cls[:256]))
        except ITEM_ERRORS as e:
            ds.problems.append(Problem(path=where, reason=f"region {k}: {e}"))
            continue
        shape.attributes = {a: v for a, v in ra.items() if v not in (None, "", {}, [])}
        shapes.append(shape)
    labelled = not (unnamed and not shapes)
    if not labelled:
        ds.problems.append(Problem(path=where, action="kept unlabelled", reason=(
            f"none of its {unnamed} region(s) has a class; the image is imported without annotation, not as an "
            "image with no objects")))
    return sample, clip_shapes(shapes, sample.width, sample.height, ds, where), labelled


def load(path: Path) -> FormatDataset:
    """Read VIA JSON/CSV files at ``path`` (a file, or the top level of a folder)."""
    path = Path(path)
    files = _files(path)
    if not files:
        raise FormatError(path, NAME, "expected a VIA project JSON (_via_img_metadata), a VIA annotation JSON "
                          "export, or a VIA CSV export (" + ",".join(CSV_HEADER) + ")")
    base = path if path.is_dir() else path.parent
    ds = FormatDataset(task=Task.DETECTION)
    per_file: list[tuple[Path, list[dict[str, Any]], dict[str, Any] | None]] = []
    for src in files:
        try:
            if src.suffix.lower() == ".csv":
                per_file.append((src, _entries_from_csv(src), None))
            else:
                doc = read_json_file(src)
                attrs = (doc.get("_via_attributes") or {}).get("region") if isinstance(doc, dict) else None
                per_file.append((src, _entries_from_json(doc), attrs if isinstance(attrs, dict) else None))
        except (*ITEM_ERRORS, csv.Error) as e:
            ds.problems.append(Problem(path=str(src), reason=f"unreadable VIA file: {e}"))
    if not per_file:
        raise FormatError(path, NAME, "no VIA file could be read: " + "; ".join(p.reason for p in ds.problems[:3]))
    pending: list[tuple[Sample, list[Shape], bool]] = []
    seen: set[str] = set()
    for src, entries, attrs in per_file:
        key = _class_key(entries, attrs)
        ds.meta.setdefault("class_attribute", {})[src.name] = key
        for entry in entries:
            if "_bad" in entry:
                ds.problems.append(Problem(path=src.name, reason=entry["_bad"]))
                continue
            try:
                sample, shapes, labelled = _entry_sample(entry, src, base, key, ds)
            except ITEM_ERRORS as e:
                ds.problems.append(Problem(path=f"{src.name}:{describe(entry.get('_key'))}",
                                           reason=f"image entry skipped: {e}"))
                continue
            if sample.name in seen:
                ds.problems.append(Problem(path=f"{src.name}:{sample.name}", reason="image already annotated in "
                                           "another VIA file; kept the first"))
                continue
            seen.add(sample.name)
            pending.append((sample, shapes, labelled))
    has_regions = any(shapes or not labelled for _, shapes, labelled in pending)
    if not has_regions and _file_labels(pending, ds):
        return ds
    ds.task = Task.SEGMENTATION if any(not s.is_rectangle for _, sh, _ in pending for s in sh) else Task.DETECTION
    for sample, shapes, labelled in pending:
        if labelled:
            sample.annotation = shapes_to_annotation(shapes, segmentation=ds.task == Task.SEGMENTATION)
        ds.samples.append(sample)
    return ds


def _file_class_key(pending: list[tuple[Sample, list[Shape], bool]]) -> str | None:
    """The file attribute that holds the image's class: one named like a class (``label``, ``class``, ...), else the
    only checkbox attribute (a free-text attribute such as a note is never taken for a class)."""
    named: set[str] = set()
    checkboxes: set[str] = set()
    for sample, _, _ in pending:
        for k, v in sample.meta.get("file_attributes", {}).items():
            if _class_names(v):
                named.add(str(k))
                if isinstance(v, dict):
                    checkboxes.add(str(k))
    lower = {k.lower(): k for k in named}
    for k in CLASS_KEYS:
        if k in lower:
            return lower[k]
    return next(iter(checkboxes)) if len(checkboxes) == 1 else None


def _class_names(value: Any) -> list[str]:
    """Class names of a file attribute: a dropdown/radio/text value, or the true options of a checkbox."""
    if isinstance(value, dict):
        return [str(k)[:256] for k, v in value.items() if v is True or v in ("true", "1")]
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return [str(value).strip()[:256]]
    return []


def _file_labels(pending: list[tuple[Sample, list[Shape], bool]], ds: FormatDataset) -> bool:
    """Classification or tagging from a file attribute (``label``, ``class``, ...) when no image has regions; True
    when the dataset was filled that way."""
    key = _file_class_key(pending)
    if key is None:
        return False
    per_sample = [_class_names(s.meta.get("file_attributes", {}).get(key)) for s, _, _ in pending]
    ds.task = Task.TAGGING if any(len(n) > 1 for n in per_sample) else Task.CLASSIFICATION
    ds.meta["class_attribute"] = {"file": key}
    for (sample, _, _), names in zip(pending, per_sample, strict=True):
        attrs = dict(sample.meta.get("file_attributes", {}))
        present = attrs.pop(key, None) is not None
        if attrs:
            sample.meta["file_attributes"] = attrs
        else:
            sample.meta.pop("file_attributes", None)
        ids = [ds.class_index(n) for n in names]
        if ds.task is Task.TAGGING:
            sample.annotation = Tags(frozenset(ids)) if present else None
        elif ids:
            sample.annotation = Label(ids[0])
        ds.samples.append(sample)
    return True


# ---------------------------------------------------------------------------------------------------------- writing


def _regions(shape: Shape, classes: list[str]) -> list[dict[str, Any]]:
    ra = {k: v for k, v in shape.attributes.items() if k != "score"}
    ra = {"label": classes[shape.class_id], **{k: v for k, v in ra.items() if k != "label"}}
    if shape.xyxy is not None and shape.rings is None and shape.rle is None:
        x1, y1, x2, y2 = shape.xyxy
        sa = {"name": "rect", "x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}
        return [{"shape_attributes": sa, "region_attributes": ra}]
    rings = shape.rings if shape.rings is not None else mask_to_rings(shape.rle.decode())  # type: ignore[union-attr]
    return [{"shape_attributes": {"name": "polygon", "all_points_x": r[0::2], "all_points_y": r[1::2]},
             "region_attributes": ra} for r in rings]


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``out/via_project.json`` (VIA 2 project) and copy the images next to it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = safe_for_export(dataset, per_subset=False)  # names from data files made safe paths under ``out``
    meta: dict[str, Any] = {}
    for sample in dataset.samples:
        ann = sample.annotation
        shapes: list[Shape] = []
        if isinstance(ann, Boxes | Instances):
            shapes = annotation_shapes(ann)
        elif isinstance(ann, SemanticMask):
            shapes = [Shape(class_id=c, rle=RLE.encode(ann.mask == c)) for c in ann.class_ids()]
        file_attrs = dict(sample.meta.get("file_attributes", {}))
        if isinstance(ann, Label | Tags):
            ids = [ann.class_id] if isinstance(ann, Label) else sorted(ann.class_ids)
            file_attrs["label"] = {dataset.classes[i]: True for i in ids}
        dest = copy_image(sample, out)
        size = dest.stat().st_size if dest.exists() else -1
        meta[f"{sample.name}{size}"] = {
            "filename": sample.name, "size": size,
            "regions": [r for s in shapes for r in _regions(s, dataset.classes)],
            "file_attributes": file_attrs,
        }
    labels_per_image = dataset.task in (Task.CLASSIFICATION, Task.TAGGING)
    file_spec = {"label": {"type": "checkbox", "description": "class of the image", "options": {
        name: "" for name in dataset.classes}, "default_options": {}}} if labels_per_image else {}
    project = {
        "_via_settings": {"ui": {"annotation_editor_height": 25, "annotation_editor_fontsize": 0.8,
                                 "leftsidebar_width": 18, "image_grid": {"img_height": 80, "rshape_fill": "none"},
                                 "image": {"region_label": "label", "region_color": "label"}},
                          "core": {"buffer_size": 18, "filepath": {}, "default_filepath": ""},
                          "project": {"name": "visionloop"}},
        "_via_img_metadata": meta,
        "_via_attributes": {"region": {"label": {"type": "dropdown", "description": "class", "options": {
            name: "" for name in dataset.classes}, "default_options": {}}}, "file": file_spec},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(meta),
    }
    tmp = out / "via_project.json.tmp"
    tmp.write_text(json.dumps(project, indent=1), encoding="utf-8")
    tmp.replace(out / "via_project.json")

