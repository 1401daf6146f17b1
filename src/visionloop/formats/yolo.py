"""YOLO text labels (Ultralytics and Darknet): boxes and polygons, normalised to the image size.

One ``<image stem>.txt`` per image, one object per line, all coordinates divided by the image width/height:

- box: ``class cx cy w h`` (optionally a 6th column, a confidence, read as the box score);
- polygon (segmentation): ``class x1 y1 x2 y2 x3 y3 ...`` (at least 3 points).

Class names come from ``data.yaml`` / ``dataset.yaml`` (``names`` as a list or an ``{id: name}`` map), ``obj.names``,
``classes.txt`` or any ``*.names`` file; without one, classes are named ``class_<id>`` and that is reported.

Accepted layouts (``path`` is the dataset folder, or its ``data.yaml`` / ``obj.data``):

- Ultralytics: ``images/<subset>/x.jpg`` with ``labels/<subset>/x.txt``, or ``<subset>/images`` + ``<subset>/labels``
  (Roboflow);
- Darknet ("strict"): ``obj.data``, ``obj.names``, ``obj_<subset>_data/`` holding images and labels side by side;
- datumaro's plain layout: ``obj.names``, ``Images/`` and ``Annotations/``;
- images and label files side by side.

Subsets come from ``data.yaml``'s ``train``/``val``/``test`` entries when it has them (a folder, an image, a ``.txt``
list of images, or a list of these; relative to ``path`` or to the YAML file, Ultralytics' dropped leading ``../``
included; every name resolved inside the dataset, one leading out reported and not read), else from folder names
(``train``, ``valid``, ``obj_train_data``...). An image listed under two roles (``train: images``, ``val: images``)
keeps its folder's subset. Symbolic links are followed only while they stay inside the dataset folder: one leading
out is reported, never read (an image whose label file it is stays unannotated, not a negative).

A label file sits next to its image or at the image's path with the last ``images`` folder replaced by ``labels``
(``Images`` -> ``Annotations``). Images without a label file are annotated with no objects (YOLO's background
images). The image size is read from the image header (EXIF orientation applied). The task is segmentation when any
line is a polygon; box lines in such a dataset become rectangles (reported as ``repaired``).

Export writes the Ultralytics layout: ``data.yaml`` (``names`` map, ``train``/``val``/``test`` folders),
``images/<subset>/`` and ``labels/<subset>/``. Multi-ring outlines are written as one ring (rings concatenated) and
RLE masks are traced into their largest outline, so those two do not survive a round trip exactly.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import yaml

from visionloop.core.annotations import RLE, Boxes, Instances, Polygons
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._boxes import check_boxes, fmt_num, polygon_bbox, rect_polygon
from visionloop.formats._geometry import mask_to_rings, ring_area
from visionloop.formats._paths import (
    LINK_OUT,
    SPLIT_NAMES,
    UnsafePathError,
    image_size,
    inside,
    read_head,
    read_yaml,
    relative_in_subset,
    resolve_inside,
    safe_relative_name,
    walk_files,
)
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, is_image_file, safe_for_export

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "yolo"
TITLE = "YOLO text files"
TASKS = frozenset({Task.DETECTION, Task.SEGMENTATION})

_YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
_NAME_FILES = ("obj.names", "classes.txt", "classes.names", "labels.txt")
_LAYOUT_DIRS = {"images", "jpegimages", "img", "imgs"}
_EXPECTED = (
    "expected YOLO: a folder with data.yaml (or obj.names / classes.txt) and one <image>.txt label file per image, "
    "in labels/ beside images/ or next to the images"
)
_MAX_NORMALISED = 1.5
"""Coordinates above this are pixels, not normalised values: the line is reported and skipped."""


def _walk(root: Path, max_depth: int = 4, links_out: list[Path] | None = None) -> tuple[list[Path], list[Path]]:
    """(image files, .txt files) under root, at most max_depth folders deep, hidden folders skipped; symbolic links
    that lead outside root are not read (appended to ``links_out``)."""
    images: list[Path] = []
    texts: list[Path] = []
    for p in walk_files(root, max_depth=max_depth, links_out=links_out):
        if p.name.lower().endswith(".txt"):
            texts.append(p)
        elif is_image_file(p):
            images.append(p)
    return images, texts


_MAX_CLASS_ID = 100_000
"""A ``names`` map with a larger class id is refused (it would make a list of that many names)."""


def _yaml_names(root: Path, problems: list[Problem] | None = None) -> tuple[list[str] | None, Path | None]:
    """Class names from the first YAML file that has ``names``; files refused (bad YAML, over the reader's limits,
    a ``names`` that is not a list or an ``{id: name}`` map) are reported to ``problems`` and skipped."""
    cands = [root / n for n in _YAML_NAMES] + sorted(root.glob("*.yaml"))
    for p in inside(root, [c for c in dict.fromkeys(cands) if c.is_file()]):
        try:
            data = read_yaml(p)
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as e:
            if problems is not None:
                problems.append(Problem(path=p.name, reason=f"YAML file not read: {str(e)[:200]}"))
            continue
        if not (isinstance(data, dict) and "names" in data):
            continue
        names = data["names"]
        if isinstance(names, list) and all(isinstance(n, str | int | float) for n in names):
            return [str(n) for n in names], p
        if isinstance(names, dict):
            try:
                ordered = sorted(((_class_id(k), str(v)) for k, v in names.items()), key=lambda kv: kv[0])
            except ValueError:
                ordered = None
            if ordered is not None:
                out = [f"class_{i}" for i in range(ordered[-1][0] + 1)] if ordered else []
                for i, v in ordered:
                    out[i] = v
                return out, p
        if problems is not None:
            problems.append(Problem(path=p.name, reason=(
                f"'names' must be a list of class names or a map of class ids 0..{_MAX_CLASS_ID} to names; "
                "file ignored")))
    return None, None


def _class_id(key: object) -> int:
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise ValueError(key)
    k = int(key)
    if not 0 <= k <= _MAX_CLASS_ID:
        raise ValueError(key)
    return k


def _names(root: Path, problems: list[Problem] | None = None) -> tuple[list[str] | None, Path | None]:
    names, src = _yaml_names(root, problems)
    if names is not None:
        return names, src
    cands = [root / n for n in _NAME_FILES] + sorted(root.glob("*.names"))
    for p in inside(root, cands):
        if p.is_file():
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8", errors="replace").splitlines()]
            while lines and not lines[-1]:
                lines.pop()
            return lines, p
    return None, None


def _is_label_text(path: Path) -> bool:
    for line in read_head(path, 4096).splitlines()[:5]:
        parts = line.split()
        if not parts:
            continue
        if not parts[0].isdigit() or len(parts) < 5:
            return False
        try:
            [float(v) for v in parts[1:]]
        except ValueError:
            return False
        return True
    return True  # empty label files are labels (no objects)


def _label_for(image: Path, root: Path) -> list[Path]:
    rel = image.relative_to(root)
    parts = list(rel.parts)
    cands = [image.with_suffix(".txt")]
    for src, dst in (("images", "labels"), ("Images", "Annotations"), ("JPEGImages", "labels"), ("Images", "labels")):
        if src in parts[:-1]:
            i = len(parts) - 1 - parts[:-1][::-1].index(src) - 1
            alt = [*parts[:i], dst, *parts[i + 1:]]
            cands.append((root.joinpath(*alt)).with_suffix(".txt"))
    return cands


def _subset_and_name(rel: Path) -> tuple[str | None, str]:
    parts = list(rel.parts)
    subset = None
    while len(parts) > 1:
        low = parts[0].lower()
        if low in _LAYOUT_DIRS:
            parts.pop(0)
        elif low in SPLIT_NAMES and subset is None:
            subset = parts.pop(0)
        elif low.startswith("obj_") and low.endswith("_data"):
            subset = subset or parts.pop(0)[4:-5]
        else:
            break
    return subset, "/".join(parts)


def _root_of(path: Path) -> Path:
    if path.is_file():
        return path.parent
    return path


def detect(path: Path) -> float:
    path = Path(path)
    if path.is_file():
        return 0.9 if path.name in (*_YAML_NAMES, "obj.data") and "names" in read_head(path) else 0.0
    if not path.is_dir():
        return 0.0
    names, src = _names(path)
    images, texts = _walk(path, max_depth=3)
    if not images and not texts:
        return 0.0
    stems = {p.stem for p in images}
    labels = [t for t in texts if t.stem in stems and _is_label_text(t)][:50]
    if not labels:
        return 0.0
    if src is not None and src.suffix in (".yaml", ".yml", ".names") or (path / "obj.data").is_file():
        return 0.9
    return 0.75 if src is not None else 0.5


def load(path: Path) -> FormatDataset:
    """Read YOLO labels; see the module docstring for the layouts and line formats."""
    path = Path(path)
    root = _root_of(path)
    if not root.is_dir():
        raise FormatError(path, NAME, _EXPECTED)
    problems: list[Problem] = []
    names, names_src = _names(root, problems)
    links_out: list[Path] = []
    images, texts = _walk(root, links_out=links_out)
    problems.extend(Problem(path=p.relative_to(root).as_posix(), action="not read", reason=LINK_OUT) for p in links_out)
    if not images:
        raise FormatError(path, NAME, _EXPECTED + "; no images found")
    used: set[Path] = set()
    parsed: list[tuple[Path, Path | None, list[tuple[int, list[float], str]]]] = []
    any_polygon = False
    max_id = -1
    readable = set(texts)  # a label file that a link takes out of the folder is not among them
    refused = set(links_out)
    unread: set[Path] = set()
    for img in images:
        cands = _label_for(img, root)
        label = next((c for c in cands if c in readable), None)
        if label is None and any(c in refused for c in cands):
            unread.add(img)  # its labels are behind a link leading out: not annotated, rather than a negative
        rows: list[tuple[int, list[float], str]] = []
        if label is not None:
            used.add(label)
            rows = _parse_label(label, root, problems)
            any_polygon = any_polygon or any(len(v) > 5 for _, v, _ in rows)
            max_id = max([max_id, *(c for c, _, _ in rows)])
        parsed.append((img, label, rows))
    skip = {names_src} if names_src else set()
    for t in texts:
        if t in used or t in skip:
            continue
        if _is_label_text(t):
            problems.append(Problem(path=t.relative_to(root).as_posix(), reason="label file without a matching image"))
    if names is None:
        if not used:
            raise FormatError(path, NAME, _EXPECTED + "; found neither a class names file nor label files")
        names = [f"class_{i}" for i in range(max_id + 1)]
        problems.append(Problem(path=".", action="repaired", reason=(
            "no class names file (data.yaml, obj.names or classes.txt); classes named class_<id>")))
    task = Task.SEGMENTATION if any_polygon else Task.DETECTION
    ds = FormatDataset(task=task, classes=list(names), problems=problems,
                       meta={"names_file": str(names_src) if names_src else None})
    split_yaml = names_src if names_src is not None and names_src.suffix in (".yaml", ".yml") else next(
        iter(inside(root, [root / n for n in _YAML_NAMES if (root / n).is_file()])), None)
    listed = _listed_subsets(root, split_yaml, images, problems)
    for img, label, rows in parsed:
        subset, name = _subset_and_name(img.relative_to(root))
        sample = Sample(name=name, image_path=img, subset=listed.get(img, subset))
        if img in unread:
            ds.samples.append(sample)
            continue
        where = label.relative_to(root).as_posix() if label else name
        size = image_size(img) if rows else None
        if rows and size is None:
            problems.append(Problem(path=where, reason="image unreadable, so its normalised labels cannot be scaled"))
            continue
        if size is not None:
            sample.width, sample.height = size
        sample.annotation = _annotation(ds, rows, size, where)
        ds.samples.append(sample)
    return ds


_ROLES = ("train", "val", "test")


def _listed_subsets(root: Path, yaml_file: Path | None, images: list[Path], problems: list[Problem]) -> dict[Path, str]:
    """The subset of each image that ``data.yaml``'s ``train``/``val``/``test`` entries list (folders, image files or
    ``.txt`` files listing images; one entry or a list), read relative to its ``path`` or to the YAML file.

    Every name is resolved inside ``root``: one that leads out is a problem (except Ultralytics' own fallback, a
    leading ``../`` dropped when the rest names something inside, as Roboflow's ``../train/images`` needs). An
    image listed under two roles (``train: images`` and ``val: images``, the "no split" layout) keeps the subset its
    folders give.
    """
    if yaml_file is None or yaml_file.suffix not in (".yaml", ".yml"):
        return {}
    try:
        doc = read_yaml(yaml_file)
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}  # reported when its names were read
    if not isinstance(doc, dict) or not any(doc.get(r) for r in _ROLES):
        return {}
    where = yaml_file.relative_to(root).as_posix()
    base = yaml_file.parent.relative_to(root).as_posix()
    if isinstance(doc.get("path"), str) and doc["path"].strip():
        try:
            base = _joined(root, base, doc["path"]).relative_to(root).as_posix()
        except UnsafePathError as e:
            problems.append(Problem(path=where, action="repaired", reason=(
                f"'path: {doc['path'][:80]}' is not inside the dataset ({e.reason}); its entries are read relative to "
                "the YAML file's folder")))
    by_path = {p.relative_to(root).as_posix(): p for p in images}
    roles: dict[Path, set[str]] = defaultdict(set)
    for role in _ROLES:
        entries = doc.get(role)
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            for img in _entry_images(root, base, entry, images, by_path, f"{where}: {role}", problems):
                roles[img].add(role)
    return {img: next(iter(r)) for img, r in roles.items() if len(r) == 1}


def _joined(root: Path, base: str, entry: object) -> Path:
    """``root/base/entry`` checked to stay inside root (``entry`` may climb out of ``base``, not out of root)."""
    if not isinstance(entry, str):
        raise UnsafePathError(entry, root, f"a path must be text, not {type(entry).__name__}")
    text = entry.replace("\\", "/")
    if text.startswith("/") or PureWindowsPath(text).drive:
        raise UnsafePathError(entry, root, "absolute path or drive")
    return resolve_inside(root, f"{base}/{text}")


def _inside_root(root: Path, base: str, entry: object) -> Path:
    """:func:`_joined`, with Ultralytics' fallback: a leading ``../`` dropped when the rest names something."""
    try:
        return _joined(root, base, entry)
    except UnsafePathError:
        if isinstance(entry, str) and entry.startswith("../"):
            alt = _joined(root, base, entry[3:])
            if alt.exists():
                return alt
        raise


def _entry_images(root: Path, base: str, entry: object, images: list[Path], by_path: dict[str, Path], where: str,
                  problems: list[Problem]) -> list[Path]:
    """The images one ``train``/``val``/``test`` entry names (a folder, an image file or a .txt list of images)."""
    shown = repr(entry)[:80]
    try:
        target = _inside_root(root, base, entry)
    except UnsafePathError as e:
        tried = f", and {entry[3:][:80]!r} is not there either" if isinstance(entry, str) and entry.startswith("../") else ""
        problems.append(Problem(path=where, action="ignored", reason=(
            f"{shown}: {e.reason}{tried}; these images keep the subset their folders name")))
        return []
    if target.is_dir():
        return [p for p in images if target in p.parents]
    if target.is_file() and target.suffix.lower() == ".txt":
        found, missing = [], []
        for line in target.read_text(encoding="utf-8", errors="replace").splitlines()[:1_000_000]:
            name = line.strip()
            if not name:
                continue
            img = _listed_image(root, target, name, by_path)
            (found if img is not None else missing).append(img or name)
        if missing:
            problems.append(Problem(path=f"{where} ({target.relative_to(root).as_posix()})", action="ignored", reason=(
                f"{len(missing)} listed image(s) not found inside the dataset, e.g. {str(missing[0])[:80]!r}")))
        return [p for p in found if isinstance(p, Path)]
    if (found_image := by_path.get(target.relative_to(root).as_posix())) is not None:
        return [found_image]
    problems.append(Problem(path=where, action="ignored", reason=f"{shown} names no folder, image or .txt list here"))
    return []


def _listed_image(root: Path, listing: Path, name: str, by_path: dict[str, Path]) -> Path | None:
    """The image a line of a .txt list names: relative to the list's folder, to the dataset root, or (Darknet's
    ``data/obj_train_data/x.jpg``) with leading folders dropped until it names one; None when it names none of the
    dataset's images (only names are compared: nothing a line names is opened)."""
    parts = name.replace("\\", "/").split("/")
    for start in dict.fromkeys((listing.parent.relative_to(root).as_posix(), ".")):
        for k in range(len(parts)):
            try:
                rel = safe_relative_name(f"{start}/{'/'.join(parts[k:])}")
            except UnsafePathError:
                continue
            if rel in by_path:
                return by_path[rel]
    return None


def _parse_label(label: Path, root: Path, problems: list[Problem]) -> list[tuple[int, list[float], str]]:
    where = label.relative_to(root).as_posix()
    try:
        text = label.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        problems.append(Problem(path=where, reason=f"unreadable label file: {e}"))
        return []
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls_f = float(parts[0])
            values = [float(v) for v in parts[1:]]
        except ValueError:
            problems.append(Problem(path=where, reason=f"line {n}: not numbers: {line.strip()[:80]!r}"))
            continue
        if not (0 <= cls_f <= _MAX_CLASS_ID) or cls_f != int(cls_f):  # also NaN and inf
            problems.append(Problem(path=where, reason=(
                f"line {n}: class id {parts[0][:20]!r} is not an integer 0..{_MAX_CLASS_ID}")))
            continue
        if len(values) not in (4, 5) and (len(values) < 6 or len(values) % 2):
            problems.append(Problem(path=where, reason=(
                f"line {n}: {len(values)} numbers after the class; expected 4 (cx cy w h), 5 (with a score) "
                "or an even number >= 6 (polygon x y pairs)")))
            continue
        coords = values[:4] if len(values) == 5 else values
        if any(abs(v) > _MAX_NORMALISED for v in coords):
            problems.append(Problem(path=where, reason=(
                f"line {n}: coordinates {coords[:4]} are not normalised to 0..1 (pixels?); divide by the image size")))
            continue
        rows.append((int(cls_f), values, f"line {n}"))
    return rows


def _annotation(ds: FormatDataset, rows: list[tuple[int, list[float], str]], size: tuple[int, int] | None,
                where: str) -> Boxes | Instances:
    w, h = size or (1, 1)
    raw: list[list[float]] = []
    class_ids: list[int] = []
    polys: list[Polygons | None] = []
    scores: list[float | None] = []
    for cls, values, line in rows:
        if cls >= len(ds.classes):
            ds.problems.append(Problem(path=where, reason=(
                f"{line}: class id {cls} is not in the {len(ds.classes)} class names")))
            continue
        if len(values) in (4, 5):
            cx, cy, bw, bh = values[:4]
            raw.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
            polys.append(None)
            scores.append(values[4] if len(values) == 5 else None)
        else:
            ring = [v * (w if i % 2 == 0 else h) for i, v in enumerate(values)]
            raw.append(polygon_bbox([ring]))
            polys.append([ring])
            scores.append(None)
        class_ids.append(cls)
    xyxy, kept = check_boxes(raw, size=size, where=where, problems=ds.problems,
                             labels=[ds.classes[c] for c in class_ids], tolerance=0.01)
    ids = np.asarray([class_ids[i] for i in kept], dtype=np.int64)
    score_list = [scores[i] for i in kept]
    score = np.asarray(score_list) if score_list and all(s is not None for s in score_list) else None
    if ds.task is Task.DETECTION:
        return Boxes(xyxy, ids, score)
    segs: list[Polygons | RLE] = []
    for row, i in enumerate(kept):
        poly = polys[i]
        if poly is None:
            ds.problems.append(Problem(path=where, action="repaired", reason=(
                f"box {i} is a box line in a polygon dataset; its rectangle is used as the outline")))
            segs.append(rect_polygon(xyxy[row]))
        else:
            ring = np.asarray(poly[0], dtype=np.float64)
            ring[0::2] = ring[0::2].clip(0, w)
            ring[1::2] = ring[1::2].clip(0, h)
            segs.append([ring.tolist()])
    return Instances(Boxes(xyxy, ids, score), segs)


# --- export -----------------------------------------------------------------------------------------------------


def _mask_outline(mask: np.ndarray) -> list[float] | None:
    """The largest outline of a binary mask (YOLO holds one ring per object), in pixel-edge coordinates."""
    return max(mask_to_rings(mask), key=ring_area, default=None)


def _lines(ann: Boxes | Instances, w: int, h: int) -> list[str]:
    boxes = ann.boxes if isinstance(ann, Instances) else ann
    out = []
    for i, (x1, y1, x2, y2) in enumerate(boxes.xyxy.tolist()):
        c = int(boxes.class_id[i])
        if isinstance(ann, Instances):
            seg = ann.segmentations[i]
            ring = _mask_outline(seg.decode()) if isinstance(seg, RLE) else [v for r in seg for v in r]
            if ring is None:
                ring = rect_polygon([x1, y1, x2, y2])[0]
            coords = " ".join(fmt_num(v / (w if k % 2 == 0 else h)) for k, v in enumerate(ring))
            out.append(f"{c} {coords}")
            continue
        vals = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
        line = f"{c} " + " ".join(fmt_num(v) for v in vals)
        if boxes.score is not None:
            line += f" {fmt_num(float(boxes.score[i]))}"
        out.append(line)
    return out


def save(dataset: FormatDataset, out: Path) -> None:
    """Write the Ultralytics layout: ``data.yaml``, ``images/[<subset>/]``, ``labels/[<subset>/]``."""
    out = Path(out)
    if dataset.task not in TASKS:
        raise FormatError(out, NAME, f"YOLO labels carry boxes or polygons, not {dataset.task}; "
                          "use class_folders for classification")
    subsets: dict[str, str] = {}
    dataset = safe_for_export(dataset)
    for s in dataset.samples:
        ann = s.annotation
        if ann is not None and not isinstance(ann, Boxes | Instances):
            raise FormatError(out, NAME, f"sample {s.name!r} has a {type(ann).__name__}; YOLO carries boxes/polygons")
        sub = Path(s.subset) if s.subset else Path()
        rel = relative_in_subset(s)
        dest = copy_image(s, out / "images" / sub, rel)
        subsets[s.subset or ""] = (Path("images") / sub).as_posix()
        if ann is None:
            continue
        w, h = s.width or 0, s.height or 0
        if not (w and h):
            w, h = (image_size(dest) if dest.exists() else None) or (0, 0)
        if not (w and h) and len(ann):
            raise FormatError(out, NAME, f"sample {s.name!r}: image size unknown (no image, no width/height), "
                              "so its boxes cannot be normalised")
        label = resolve_inside(out, (Path("labels") / sub / rel).with_suffix(".txt").as_posix())
        label.parent.mkdir(parents=True, exist_ok=True)
        lines = _lines(ann, w, h)
        label.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    doc: dict[str, Any] = {"path": "."}
    named = {k: v for k, v in subsets.items() if k}
    if not named:
        doc.update(train="images", val="images")
    else:
        by_role: dict[str, list[str]] = defaultdict(list)
        for k, v in named.items():
            role = {"valid": "val", "validation": "val", "training": "train", "testing": "test"}.get(k, k)
            by_role[role].append(v)
        for role, dirs in by_role.items():
            doc[role] = dirs[0] if len(dirs) == 1 else dirs
        doc.setdefault("val", doc.get("train", "images"))
    doc["names"] = dict(enumerate(dataset.classes))
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
