"""Pascal VOC XML: one ``<annotation>`` file per image with ``<object>`` boxes (detection).

Accepted layouts (``path`` may be the dataset folder, its parent, or one XML file):

- ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/{train,val,trainval,test}.txt`` (official VOC, BCCD);
- ``annotations/*.xml`` with ``images/`` beside it (Kaggle);
- XML files next to their images, optionally in ``<subset>/`` folders (Roboflow, LabelImg).

Coordinates: ``xmin``/``ymin``/``xmax``/``ymax`` are read as given, as pixel-edge xyxy, and written back unchanged.
The VOC devkit defines them as 1-based inclusive pixel indexes, but the tools that write most VOC files today
(LabelImg, CVAT, Roboflow, datumaro) write the edge coordinates themselves (LabelImg clamps ``xmin`` to >= 1), so a
box touching the right border has ``xmax == width`` and needs no shift. Reading as given keeps export -> import exact
and makes BCCD's XML boxes identical to the boxes of its ``test.csv``. Boxes are clipped to ``<size>`` when it is
given (reported as ``clipped``); zero-size boxes are kept and reported.

Per object, ``difficult``, ``truncated`` and ``occluded`` set to 1 become attributes ``{"difficult": True}`` etc.;
a ``pose`` other than ``Unspecified`` becomes ``{"pose": ...}``; CVAT/datumaro ``<attributes>`` entries are kept.
Subsets come from ``ImageSets/Main/<subset>.txt`` (``train``/``val``/``test`` win over ``trainval``) or from a
``<subset>/`` folder. ``<part>`` and ``<actions>`` are ignored. Segmentation PNGs (``SegmentationClass``,
``SegmentationObject``) are not read by this module.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from defusedxml import ElementTree as safe_xml

from visionloop.core.annotations import Boxes, Instances
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._boxes import check_boxes, fmt_num
from visionloop.formats._paths import (
    ImageFinder,
    UnsafePathError,
    image_size,
    inside,
    read_head,
    resolve_inside,
    split_of,
)
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, safe_for_export

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "voc"
TITLE = "Pascal VOC XML"
TASKS = frozenset({Task.DETECTION})

_FLAGS = ("truncated", "difficult", "occluded")
_EXPECTED = (
    "expected Pascal VOC: a folder with Annotations/*.xml (and JPEGImages/), annotations/*.xml with images/, "
    "or <annotation> XML files next to their images"
)


def _is_voc_xml(path: Path) -> bool:
    head = read_head(path, 8192)
    if not re.search(r"<annotation[\s>]", head):
        return False
    if "<polygon>" in head or "<imagesize>" in head:  # LabelMe XML, also <annotation>-rooted
        return False
    return bool(re.search(r"<(bndbox|segmented|size|object)[\s>]", head)) or "<filename>" in head


def _sample_xmls(folder: Path, pattern: str, limit: int = 5) -> list[Path]:
    out = []
    for p in sorted(folder.glob(pattern)):
        out.append(p)
        if len(out) >= limit:
            break
    return out


def _layout(path: Path) -> tuple[Path, list[Path], float] | None:
    """(dataset root, xml files (not yet globbed for speed when detecting: empty), confidence) or None."""
    if path.is_file():
        return (path.parent, [path], 0.9) if path.suffix.lower() == ".xml" and _is_voc_xml(path) else None
    if not path.is_dir():
        return None
    for ann, score in (("Annotations", 0.95), ("annotations", 0.85)):
        d = path / ann
        if d.is_dir():
            xmls = _sample_xmls(d, "**/*.xml")
            if xmls and any(_is_voc_xml(p) for p in xmls):
                return path, [], score
    xmls = _sample_xmls(path, "*.xml") or _sample_xmls(path, "*/*.xml")
    if xmls and any(_is_voc_xml(p) for p in xmls):
        return path, [], 0.8
    subs = [d for d in sorted(path.iterdir()) if d.is_dir() and (d / "Annotations").is_dir()]
    if len(subs) == 1:
        inner = _layout(subs[0])
        if inner is not None:
            return inner[0], inner[1], 0.9
    return None


def detect(path: Path) -> float:
    found = _layout(Path(path))
    return found[2] if found else 0.0


def _xml_files(root: Path) -> tuple[list[Path], Path]:
    """All annotation files and the folder their ids are relative to."""
    for ann in ("Annotations", "annotations"):
        if (root / ann).is_dir():
            return inside(root, sorted((root / ann).rglob("*.xml"))), root / ann
    files = sorted(p for p in inside(root, [*root.glob("*.xml"), *root.glob("*/*.xml")]) if _is_voc_xml(p))
    return files, root


def _subsets(root: Path) -> dict[str, str]:
    """image id -> subset from ImageSets/Main (or Segmentation) lists."""
    out: dict[str, str] = {}
    for group in ("Main", "Segmentation", "Layout"):
        d = root / "ImageSets" / group
        lists = sorted(p for p in d.glob("*.txt") if "_" not in p.stem) if d.is_dir() else []
        if not lists:
            continue
        lists.sort(key=lambda p: (p.stem != "trainval", p.stem))  # trainval first, then train/val/test override
        for p in lists:
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if parts:
                    out[parts[0]] = p.stem
        return out
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _num(el: ET.Element | None, tag: str) -> float | None:
    text = el.findtext(tag) if el is not None else None
    try:
        return float(text) if text is not None and text.strip() != "" else None
    except ValueError:
        return None


def load(path: Path) -> FormatDataset:
    """Read Pascal VOC XML; see the module docstring for layouts and the coordinate convention."""
    path = Path(path)
    found = _layout(path)
    if found is None:
        raise FormatError(path, NAME, _EXPECTED)
    root, files, _ = found
    id_base = path.parent if path.is_file() else root
    if path.is_file() and path.parent.name in ("Annotations", "annotations"):
        root = path.parent.parent
    if not files:
        files, id_base = _xml_files(root)
    if not files:
        raise FormatError(path, NAME, _EXPECTED + "; no XML files found")
    subsets = _subsets(root)
    ds = FormatDataset(task=Task.DETECTION)
    seen: dict[tuple[str | None, str], str] = {}
    for f in files:
        _read_xml(ds, f, root, id_base, subsets)
        if len(ds.samples) > len(seen):
            s = ds.samples[-1]
            key = (s.subset, s.name)
            if key in seen:
                ds.samples.pop()
                ds.problems.append(Problem(path=_where(f, root), reason=(
                    f"image {s.name!r} is already annotated by {seen[key]}; this file is skipped")))
            else:
                seen[key] = _where(f, root)
    return ds


def _where(f: Path, root: Path) -> str:
    return f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)


def _read_xml(ds: FormatDataset, f: Path, root: Path, id_base: Path, subsets: dict[str, str]) -> None:
    where = _where(f, root)
    # defusedxml's refusals are ValueErrors; an unknown encoding in the XML declaration is a LookupError
    try:
        doc = safe_xml.parse(f).getroot()
    except (ET.ParseError, OSError, UnicodeDecodeError, ValueError, LookupError) as e:
        ds.problems.append(Problem(path=where, reason=f"not readable as XML: {e}"))
        return
    if doc.tag != "annotation":
        ds.problems.append(Problem(path=where, reason=f"root element is <{doc.tag}>, expected <annotation>"))
        return
    image_id = f.relative_to(id_base).with_suffix("").as_posix() if f.is_relative_to(id_base) else f.stem
    id_dir = image_id.rsplit("/", 1)[0] + "/" if "/" in image_id else ""
    filename = (doc.findtext("filename") or "").strip()
    subset = subsets.get(image_id)
    if subset is None and f.parent != root and f.parent.name not in ("Annotations", "annotations"):
        subset = split_of(f.parent.name) if split_of(f.parent.name) == f.parent.name.lower() else None
    folders = [root / "JPEGImages", root / "images", f.parent, root]
    if f.parent.name in ("Annotations", "annotations"):
        folders += [f.parent.parent / "JPEGImages", f.parent.parent / "images"]
    finder = ImageFinder(folders)
    image_path = None
    try:
        if filename:
            image_path = finder.find(id_dir + filename) or finder.find(filename)
        if image_path is None:
            image_path = finder.find(image_id)
    except UnsafePathError as e:
        ds.problems.append(Problem(path=where, reason=f"<filename> {str(e.name)[:80]!r}: {e.reason}: not imported"))
        return
    if filename:
        name = id_dir + filename
    elif image_path is not None:
        name = image_id + image_path.suffix
    else:
        name = image_id + ".jpg"
    if image_path is None:
        ds.problems.append(Problem(path=where, reason=(
            f"image {filename or image_id!r} not found (looked in "
            f"{', '.join(d.relative_to(root).as_posix() if d.is_relative_to(root) else str(d) for d in finder.folders) or 'nothing'})")))
    size_el = doc.find("size")
    w, h = _num(size_el, "width"), _num(size_el, "height")
    width = int(w) if w and math.isfinite(w) and w > 0 else None
    height = int(h) if h and math.isfinite(h) and h > 0 else None
    raw: list[list[float]] = []
    class_ids: list[int] = []
    attrs: list[dict[str, Any]] = []
    for k, obj in enumerate(doc.findall("object")):
        label = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        coords = [_num(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")]
        if not label:
            ds.problems.append(Problem(path=where, reason=f"object {k} has no <name>; skipped"))
            continue
        if bb is None or any(c is None for c in coords):
            ds.problems.append(Problem(path=where, reason=f"object {k} ({label}) has no complete <bndbox>; skipped"))
            continue
        at: dict[str, Any] = {}
        for flag in _FLAGS:
            if (obj.findtext(flag) or "").strip().lower() in ("1", "true", "yes"):
                at[flag] = True
        pose = (obj.findtext("pose") or "").strip()
        if pose and pose != "Unspecified":
            at["pose"] = pose
        for a in obj.findall("attributes/attribute"):
            key = (a.findtext("name") or "").strip()
            if key:
                at[key] = _parse_value((a.findtext("value") or "").strip())
        raw.append([float(c) for c in coords])  # type: ignore[arg-type]
        class_ids.append(ds.class_index(label))
        attrs.append(at)
    size = (width, height) if width and height else None
    xyxy, kept = check_boxes(raw, size=size, where=where, problems=ds.problems,
                             labels=[ds.classes[c] for c in class_ids])
    boxes = Boxes(xyxy, np.asarray([class_ids[i] for i in kept], dtype=np.int64), attributes=[attrs[i] for i in kept])
    ds.samples.append(Sample(name=name, image_path=image_path, annotation=boxes, width=width, height=height,
                             subset=subset, meta={"voc_id": image_id}))


# --- export -----------------------------------------------------------------------------------------------------


def _object_xml(label: str, box: list[float], at: dict[str, Any]) -> str:
    at = dict(at)
    flags = {f: int(bool(at.pop(f, False))) for f in _FLAGS}
    pose = str(at.pop("pose", "Unspecified"))
    lines = [
        "  <object>", f"    <name>{escape(label)}</name>", f"    <pose>{escape(pose)}</pose>",
        f"    <truncated>{flags['truncated']}</truncated>", f"    <difficult>{flags['difficult']}</difficult>",
    ]
    if flags["occluded"]:
        lines.append("    <occluded>1</occluded>")
    lines.append("    <bndbox>")
    lines += [f"      <{t}>{fmt_num(v)}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)]
    lines.append("    </bndbox>")
    if at:
        lines.append("    <attributes>")
        for k, v in at.items():
            value = v if isinstance(v, str) else json.dumps(v)
            lines.append(f"      <attribute><name>{escape(str(k))}</name><value>{escape(value)}</value></attribute>")
        lines.append("    </attributes>")
    lines.append("  </object>")
    return "\n".join(lines)


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``Annotations/<id>.xml``, ``JPEGImages/<name>`` and ``ImageSets/Main/<subset>.txt``.

    Segmentation datasets are written as their boxes (VOC XML carries no outlines).
    """
    out = Path(out)
    if dataset.task not in (Task.DETECTION, Task.SEGMENTATION):
        raise FormatError(out, NAME, f"Pascal VOC XML carries boxes; cannot write a {dataset.task} dataset")
    dataset = safe_for_export(dataset)
    counts = Counter(s.name for s in dataset.samples)
    lists: dict[str, list[str]] = defaultdict(list)
    for s in dataset.samples:
        ann = s.annotation
        if isinstance(ann, Instances):
            ann = ann.boxes
        if ann is not None and not isinstance(ann, Boxes):
            raise FormatError(out, NAME, f"sample {s.name!r} has a {type(ann).__name__}; VOC XML carries boxes only")
        name = s.name.replace("\\", "/").lstrip("/")
        if counts[s.name] > 1 and s.subset:
            name = f"{s.subset}/{name}"
        image_id = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
        dest = copy_image(s, out / "JPEGImages", name)
        w, h = s.width or 0, s.height or 0
        if not (w and h) and dest.exists():
            w, h = image_size(dest) or (0, 0)
        body = [
            "<annotation>", "  <folder>JPEGImages</folder>", f"  <filename>{escape(name.rsplit('/', 1)[-1])}</filename>",
            f"  <size>\n    <width>{w}</width>\n    <height>{h}</height>\n    <depth>3</depth>\n  </size>",
            "  <segmented>0</segmented>",
        ]
        if ann is not None:
            for i, box in enumerate(ann.xyxy.tolist()):
                label = dataset.classes[int(ann.class_id[i])]
                body.append(_object_xml(label, box, ann.attributes[i] if ann.attributes else {}))
        body.append("</annotation>\n")
        xml_path = resolve_inside(out / "Annotations", f"{image_id}.xml")
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        xml_path.write_text("\n".join(body), encoding="utf-8")
        if s.subset:
            lists[s.subset].append(image_id)
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    for subset, ids in lists.items():
        (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (out / "ImageSets" / "Main" / f"{subset}.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
