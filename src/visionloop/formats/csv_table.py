"""A plain CSV table: one row per image (classification, tagging) or per box (detection).

Column names are matched case-insensitively, ignoring spaces and quotes:

- image (required): ``image``, ``image_name``, ``image_path``, ``image_file``, ``filename``, ``file_name``, ``file``,
  ``path``, ``img``, ``image_id`` -- a path relative to the CSV's folder (also looked up in ``images/``); the
  extension may be left out;
- label: ``label``, ``label_name``, ``class``, ``class_name``, ``category``, ``category_name``, ``cell_type``;
  several classes in one cell separated by ``;`` (or ``|``), or a column named ``labels`` / ``tags`` / ``classes``,
  make it tagging; an image on several label rows gets all of them;
- boxes, pixels: ``xmin,ymin,xmax,ymax`` (also ``x_min``..., ``x1,y1,x2,y2``, ``left,top,right,bottom``),
  or ``x,y,w,h`` / ``x,y,width,height`` / ``x1,y1,w,h`` / ``xmin,ymin,width,height`` (top-left corner and size),
  or one ``bbox`` column holding ``x1 y1 x2 y2`` (any of ``[``, ``,`` and spaces as separators);
  with xyxy boxes, ``width``/``height`` columns give the image size (boxes are clipped to it and reported);
- one-hot (Roboflow "multiclass", Kaggle multi-label): no label or box column, every other column 0/1 -> tagging.

Rows for boxes whose box cells are empty mark an image annotated with no boxes. Several CSV files in a folder are
read when their names (``train-export.csv``) or folders (``train/_classes.csv``) name subsets; otherwise the first is
read and that is reported. A ``dataset_meta.json`` with a ``labels`` list beside the CSV fixes the class order.

Export writes ``annotations.csv`` (``<subset>/annotations.csv`` per subset) with the images beside it:
``image,xmin,ymin,xmax,ymax,label`` for boxes (an image with no boxes gets one row with empty box cells),
``image,label`` for classification, ``image,labels`` (``;``-separated) for tagging.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.annotations import Boxes, Instances, Label, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._boxes import check_boxes, fmt_num
from visionloop.formats._paths import (
    ImageFinder,
    UnsafePathError,
    inside,
    read_head,
    relative_in_subset,
    split_of,
)
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, safe_for_export

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "csv"
TITLE = "CSV table"
TASKS = frozenset({Task.CLASSIFICATION, Task.TAGGING, Task.DETECTION})

_IMAGE = ("image", "image_name", "image_path", "image_file", "filename", "file_name", "file", "path", "img",
          "image_id")
_LABEL = ("label", "label_name", "class", "class_name", "category", "category_name", "cell_type")
_LABELS = ("labels", "tags", "classes")
_XYXY = (("xmin", "ymin", "xmax", "ymax"), ("x_min", "y_min", "x_max", "y_max"), ("x1", "y1", "x2", "y2"),
         ("left", "top", "right", "bottom"))
_XYWH = (("x", "y", "w", "h"), ("x", "y", "width", "height"), ("x1", "y1", "w", "h"),
         ("xmin", "ymin", "width", "height"), ("bbox_x", "bbox_y", "bbox_width", "bbox_height"))
_TAG_SEP = re.compile(r"[;|]")
_EXPECTED = (
    "expected a CSV with an image column (image, filename, image_name, ...) and a label column (label, class, ...), "
    "box columns (xmin,ymin,xmax,ymax / x,y,w,h / bbox) or one 0/1 column per class"
)


def _norm(name: str) -> str:
    return name.strip().strip('"').strip("'").strip().lower().replace(" ", "_")


def _first(cols: list[str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in cols), None)


class _Schema:
    """Which columns mean what in one CSV header."""

    def __init__(self, header: list[str]) -> None:
        self.cols = [_norm(c) for c in header]
        cols = self.cols
        self.image = _first(cols, _IMAGE)
        self.labels = _first(cols, _LABELS)
        self.label = _first(cols, _LABEL) or self.labels
        self.xyxy = next((t for t in _XYXY if all(c in cols for c in t)), None)
        self.xywh = None if self.xyxy else next((t for t in _XYWH if all(c in cols for c in t)), None)
        self.bbox = "bbox" if "bbox" in cols and not (self.xyxy or self.xywh) else None
        self.size = ("width", "height") if self.xyxy and "width" in cols and "height" in cols else None
        used = {self.image, self.label, *(self.xyxy or ()), *(self.xywh or ()), self.bbox}
        self.onehot = [c for c in cols if c not in used] if self.label is None and not self.has_boxes else []

    @property
    def has_boxes(self) -> bool:
        return bool(self.xyxy or self.xywh or self.bbox)

    @property
    def usable(self) -> bool:
        return self.image is not None and (self.label is not None or self.has_boxes or bool(self.onehot))


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_text(encoding="utf-8-sig")
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if first else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return [], []
    return rows[0], rows[1:]


def _header_of(path: Path) -> _Schema | None:
    """The schema of a CSV file from its first lines, or None when it is not a table this module reads."""
    lines = read_head(path, 8192).lstrip("\ufeff").splitlines()
    if not lines or not lines[0]:
        return None
    delimiter = max(",;\t", key=lines[0].count)
    try:
        rows = list(csv.reader(lines[:6], delimiter=delimiter, skipinitialspace=True))
    except csv.Error:
        return None
    schema = _Schema(rows[0])
    if not schema.usable:
        return None
    if schema.onehot:  # one 0/1 column per class: check the values, many CSVs have an image column and others
        data = [r for r in rows[1:] if len(r) == len(rows[0])]
        if not data or any(r[i].strip() not in ("0", "1", "") for r in data for i, c in enumerate(schema.cols)
                           if c in schema.onehot):
            return None
    return schema


def _csv_files(root: Path) -> list[Path]:
    return inside(root, sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")))


def detect(path: Path) -> float:
    path = Path(path)
    if path.is_file():
        return 0.8 if path.suffix.lower() == ".csv" and _header_of(path) is not None else 0.0
    if not path.is_dir():
        return 0.0
    return 0.6 if any(_header_of(p) is not None for p in _csv_files(path)[:20]) else 0.0


def _subset_of(f: Path, root: Path) -> str | None:
    token = split_of(f.stem)
    if token is not None:
        return token
    if f.parent != root and split_of(f.parent.name) == f.parent.name.lower():
        return f.parent.name
    return None


def load(path: Path) -> FormatDataset:
    """Read one CSV file, or the CSV file(s) of a folder; see the module docstring for the columns."""
    path = Path(path)
    problems: list[Problem] = []
    if path.is_file():
        root, files = path.parent, [(path, None)]
    elif path.is_dir():
        root = path
        found = [f for f in _csv_files(path) if _header_of(f) is not None]
        if not found:
            raise FormatError(path, NAME, _EXPECTED + "; no such CSV file in this folder")
        subsets = [_subset_of(f, root) for f in found]
        if len(found) > 1 and (None in subsets or len(set(subsets)) < len(subsets)):
            problems.append(Problem(path=found[0].relative_to(root).as_posix(), action="kept", reason=(
                f"{len(found)} CSV files whose names do not tell subsets apart; read only this one "
                "(import the others by naming the file)")))
            found, subsets = found[:1], [None]
        files = list(zip(found, subsets, strict=True))
    else:
        raise FormatError(path, NAME, f"no such file or folder; {_EXPECTED}")
    classes = _meta_labels(root)
    tables = []
    for f, subset in files:
        where = f.relative_to(root).as_posix()
        try:
            header, rows = _read_rows(f)
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            problems.append(Problem(path=where, reason=f"unreadable CSV: {e}"))
            continue
        schema = _Schema(header)
        if not schema.usable:
            problems.append(Problem(path=where, reason=f"{_EXPECTED}; the header is {header}"))
            continue
        tables.append((f, subset, schema, rows))
    if not tables:
        if path.is_file() and problems:
            raise FormatError(path, NAME, problems[-1].reason)
        raise FormatError(path, NAME, _EXPECTED)
    has_boxes = any(s.has_boxes for _, _, s, _ in tables)
    ds = FormatDataset(task=Task.DETECTION if has_boxes else Task.CLASSIFICATION, classes=classes, problems=problems)
    for f, subset, schema, rows in tables:
        _read_table(ds, f, root, subset, schema, rows)
    return ds


def _meta_labels(root: Path) -> list[str]:
    meta = root / "dataset_meta.json"
    try:
        labels = json.loads(meta.read_text(encoding="utf-8")).get("labels") if meta.is_file() else None
    except (OSError, ValueError, AttributeError):
        return []
    return [str(x) for x in labels] if isinstance(labels, list) else []


def _floats(cells: list[str]) -> list[float] | None:
    if all(not c.strip() for c in cells):
        return None
    return [float(c) for c in cells]


def _read_table(ds: FormatDataset, f: Path, root: Path, subset: str | None, schema: _Schema,
                rows: list[list[str]]) -> None:
    where = f.relative_to(root).as_posix()
    cols = schema.cols
    idx = {c: i for i, c in reversed(list(enumerate(cols)))}
    finder = ImageFinder([f.parent, f.parent / "images", root, root / "images"])
    per_image: dict[str, dict[str, Any]] = {}
    tagging = schema.labels is not None or bool(schema.onehot)
    for n, row in enumerate(rows, 2):
        row = row + [""] * (len(cols) - len(row))
        cell = {c: row[i].strip() for c, i in idx.items()}
        name = cell[schema.image]  # type: ignore[index]
        if not name:
            ds.problems.append(Problem(path=where, reason=f"row {n}: empty image cell; skipped"))
            continue
        item = per_image.setdefault(name, {"labels": [], "boxes": [], "box_labels": [], "size": None, "row": n})
        if schema.onehot:
            for c in schema.onehot:
                v = cell[c]
                if v not in ("0", "1", ""):
                    ds.problems.append(Problem(path=where, reason=f"row {n}: column {c!r} is {v!r}, expected 0 or 1"))
                elif v == "1":
                    item["labels"].append(c)
            continue
        labels = [t.strip() for t in _TAG_SEP.split(cell[schema.label])] if schema.label else []
        labels = [t for t in labels if t]
        if len(labels) > 1:
            tagging = True
        if not schema.has_boxes:
            item["labels"].extend(labels)
            continue
        try:
            if schema.xyxy:
                box = _floats([cell[c] for c in schema.xyxy])
            elif schema.xywh:
                xywh = _floats([cell[c] for c in schema.xywh])
                box = None if xywh is None else [xywh[0], xywh[1], xywh[0] + xywh[2], xywh[1] + xywh[3]]
            else:
                text = cell["bbox"].strip("[]() ")
                box = [float(v) for v in re.split(r"[,\s]+", text) if v] if text else None
                if box is not None and len(box) != 4:
                    raise ValueError(f"bbox {cell['bbox']!r} is not 4 numbers")
            if schema.size and cell["width"] and cell["height"]:
                item["size"] = (int(float(cell["width"])), int(float(cell["height"])))
        except (ValueError, OverflowError) as e:
            ds.problems.append(Problem(path=where, reason=f"row {n}: {e}; skipped"))
            continue
        if box is None:
            continue  # an image annotated with no boxes
        if len(labels) != 1:
            ds.problems.append(Problem(path=where, reason=f"row {n}: a box needs exactly one label, got {labels}"))
            continue
        item["boxes"].append(box)
        item["box_labels"].append(labels[0])
    if ds.task is Task.CLASSIFICATION and tagging:
        ds.task = Task.TAGGING
    if ds.task is Task.CLASSIFICATION and any(len(set(v["labels"])) > 1 for v in per_image.values()):
        ds.task = Task.TAGGING
    if schema.onehot:
        for c in schema.onehot:
            ds.class_index(c)
    for name, item in per_image.items():
        try:
            image_path = finder.find(name)
        except UnsafePathError as e:
            ds.problems.append(Problem(path=f"{where}: row {item['row']}",
                                       reason=f"image name {name[:80]!r}: {e.reason}: not imported"))
            continue
        name = name.replace("\\", "/")
        if image_path is not None and not name.lower().endswith(image_path.suffix.lower()):
            name += image_path.suffix
        sample = Sample(name=name, image_path=image_path, subset=subset)
        if image_path is None:
            ds.problems.append(Problem(path=f"{where}: row {item['row']}", reason=(
                f"image {name!r} not found next to the CSV or in images/")))
        if item["size"]:
            sample.width, sample.height = item["size"]
        if ds.task is Task.DETECTION:
            ids = [ds.class_index(lbl) for lbl in item["box_labels"]]
            xyxy, kept = check_boxes(item["boxes"], size=item["size"], where=f"{where}: {name}",
                                     problems=ds.problems, labels=item["box_labels"])
            sample.annotation = Boxes(xyxy, np.asarray([ids[i] for i in kept], dtype=np.int64))
        else:
            ids = sorted({ds.class_index(lbl) for lbl in item["labels"]})
            if ds.task is Task.TAGGING:
                sample.annotation = Tags(frozenset(ids))
            elif ids:
                sample.annotation = Label(ids[0])
        ds.samples.append(sample)


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``[<subset>/]annotations.csv`` and copy the images beside it."""
    out = Path(out)
    if dataset.task not in (*TASKS, Task.SEGMENTATION):
        raise FormatError(out, NAME, f"a CSV table carries labels, tags or boxes, not {dataset.task}")
    by_subset: dict[str | None, list[Sample]] = defaultdict(list)
    dataset = safe_for_export(dataset)
    for s in dataset.samples:
        by_subset[s.subset].append(s)
    boxes_task = dataset.task in (Task.DETECTION, Task.SEGMENTATION)
    header = (["image", "xmin", "ymin", "xmax", "ymax", "label"] if boxes_task else
              ["image", "labels"] if dataset.task is Task.TAGGING else ["image", "label"])
    for subset, samples in by_subset.items():
        folder = out / subset if subset else out
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for s in samples:
            rel = relative_in_subset(s)
            copy_image(s, folder, rel)
            ann = s.annotation.boxes if isinstance(s.annotation, Instances) else s.annotation
            if boxes_task:
                if not isinstance(ann, Boxes) or not len(ann):
                    writer.writerow([rel, "", "", "", "", ""])
                    continue
                for box, c in zip(ann.xyxy.tolist(), ann.class_id.tolist(), strict=True):
                    writer.writerow([rel, *(fmt_num(v) for v in box), dataset.classes[c]])
            elif isinstance(ann, Tags):
                writer.writerow([rel, ";".join(dataset.classes[c] for c in sorted(ann.class_ids))])
            elif isinstance(ann, Label):
                writer.writerow([rel, dataset.classes[ann.class_id]])
            elif ann is None:
                writer.writerow([rel, ""])
            else:
                raise FormatError(out, NAME, f"sample {s.name!r} has a {type(ann).__name__}; cannot write it as CSV")
        (folder / "annotations.csv").write_text(buf.getvalue(), encoding="utf-8")
