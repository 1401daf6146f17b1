"""CVAT XML 1.1, "for images" (boxes, polygons, masks, ellipses, tags per image) and "for video" (tracks).

Layout as CVAT exports it::

    annotations.xml            (or any *.xml whose root is <annotations>; a project export puts <image subset=...>)
    images/<name>              (project exports: images/<subset>/<name>; video: images/frame_000010.png)

Images: ``<box>`` -> rectangles, ``<polygon>`` / ``<ellipse>`` / ``<mask>`` -> instance outlines (polygons with the same
``group_id`` and label are one instance), ``<tag>`` -> classification / tagging. ``<polyline>``, ``<points>``,
``<cuboid>`` and ``<skeleton>`` carry no area and are skipped with a problem. ``<attribute>`` children and ``occluded``
are kept in the shape's attributes.

Video: every ``<track>`` is one object; its shapes give its box on a frame, ``outside="1"`` means the object is absent
from that frame on. CVAT writes every frame of a track; where frames are missing between two shapes the box is
interpolated linearly, and after the last shape that is not ``outside`` it stays where it was (CVAT's own semantics).
Frames become samples with ``video_id`` and ``frame_index``; boxes carry the track id.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from defusedxml import ElementTree as safe_xml

from visionloop.core.annotations import RLE, Boxes, Instances, Label, SemanticMask, Tags, boxes_of
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._fields import ITEM_ERRORS, FieldError, as_float, as_int, check_canvas, describe
from visionloop.formats._geometry import Shape, annotation_shapes, clip_shapes, ellipse_ring, shapes_to_annotation
from visionloop.formats._paths import annotation_files, candidate_files, head, image_size
from visionloop.formats.base import (
    FormatDataset,
    Problem,
    Sample,
    copy_image,
    find_image,
    is_image_file,
    safe_for_export,
)

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "cvat"
TITLE = "CVAT XML"
TASKS = frozenset({Task.DETECTION, Task.SEGMENTATION, Task.CLASSIFICATION, Task.TAGGING})

_ROOT = re.compile(r"<annotations[\s>]")
_FRAME = re.compile(r"(?:frame_?)?(\d+)$")
_NO_AREA = {"polyline", "points", "cuboid", "skeleton", "cuboid_3d"}


def _is_cvat_xml(path: Path) -> bool:
    text = head(path, 8192)
    if not _ROOT.search(text):
        return False
    return "<version>1.1</version>" in text or "<meta>" in text or "<image " in text or "<track " in text


def detect(path: Path) -> float:
    """0.95 for a CVAT XML file, or a folder with one at its top level."""
    path = Path(path)
    return 0.95 if any(_is_cvat_xml(p) for p in candidate_files(path, ".xml", limit=20)) else 0.0


# ---------------------------------------------------------------------------------------------------------- reading


@dataclass
class _Pending:
    sample: Sample
    shapes: list[Shape] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)


def _points(text: str) -> list[float]:
    out: list[float] = []
    for pair in text.strip().split(";"):
        xy = pair.split(",")
        if len(xy) != 2:
            raise FieldError("points", "x,y pairs separated by ';'", text)
        out += [as_float(xy[0], "point x"), as_float(xy[1], "point y")]
    return out


def _num(el: ET.Element, key: str, default: str | None = None) -> float:
    return as_float(el.get(key, default), key)


def _size_attr(el: ET.Element, key: str) -> int:
    """An image's ``width`` or ``height`` attribute in pixels; 0 when absent."""
    value = el.get(key)
    return as_int(value, key) if value not in (None, "") else 0


def _attributes(el: ET.Element) -> dict[str, Any]:
    attrs: dict[str, Any] = {a.get("name", ""): (a.text or "") for a in el.findall("attribute")}
    if el.get("occluded") == "1":
        attrs["occluded"] = True
    return attrs


def _mask_rle(el: ET.Element, width: int, height: int) -> RLE:
    """CVAT's mask: run lengths (starting with background) over the ``width`` x ``height`` box at left, top."""
    check_canvas(width, height, "image width x height")
    left, top = as_int(el.get("left", 0), "left"), as_int(el.get("top", 0), "top")
    bw, bh = as_int(el.get("width", 0), "mask width", hi=width), as_int(el.get("height", 0), "mask height", hi=height)
    counts = [as_int(v, "mask rle", hi=bw * bh) for v in (el.get("rle") or "").split(",") if v.strip()]
    if sum(counts) != bw * bh:
        raise ValueError(f"mask run lengths add up to {sum(counts)}, its {bw}x{bh} box has {bw * bh} pixels")
    values = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool).reshape(bh, bw)
    full = np.zeros((height, width), dtype=bool)
    full[top:top + bh, left:left + bw] = values[: max(0, height - top), : max(0, width - left)]
    return RLE.encode(full)


def _shape(el: ET.Element, ds: FormatDataset, width: int, height: int) -> Shape:
    """One drawn element; ValueError when it is malformed."""
    cid = ds.class_index(el.get("label", ""))
    attrs = _attributes(el)
    if el.tag == "box":
        x1, y1, x2, y2 = (_num(el, k) for k in ("xtl", "ytl", "xbr", "ybr"))
        if x2 < x1 or y2 < y1:
            raise ValueError(f"box has bad corners {[x1, y1, x2, y2]}")
        return Shape(class_id=cid, xyxy=(x1, y1, x2, y2), attributes=attrs)
    if el.tag == "polygon":
        ring = _points(el.get("points", ""))
        if len(ring) < 6:
            raise ValueError(f"polygon has {len(ring) // 2} points, needs >= 3")
        return Shape(class_id=cid, rings=[ring], attributes=attrs)
    if el.tag == "ellipse":
        cx, cy, rx, ry = (_num(el, k) for k in ("cx", "cy", "rx", "ry"))
        theta = np.deg2rad(_num(el, "rotation", "0"))
        return Shape(class_id=cid, rings=[ellipse_ring(cx, cy, rx, ry, theta)], attributes=attrs)
    if el.tag == "mask":
        if not width or not height:
            raise ValueError("mask on an image without width/height")
        return Shape(class_id=cid, rle=_mask_rle(el, width, height), attributes=attrs)
    raise ValueError(f"unsupported shape <{describe(el.tag)}>")


def _labels(root: ET.Element, ds: FormatDataset) -> None:
    for label in root.iterfind("meta/*/labels/label"):
        name = (label.findtext("name") or "").strip()
        if name:
            ds.class_index(name)
    for label in root.iterfind("meta/project/tasks/task/labels/label"):
        name = (label.findtext("name") or "").strip()
        if name:
            ds.class_index(name)


def _image_pending(el: ET.Element, xml: Path, base: Path, ds: FormatDataset) -> _Pending | None:
    name = el.get("name")
    if not name:
        ds.problems.append(Problem(path=str(xml), reason=f"<image id={el.get('id')}> has no name"))
        return None
    subset = el.get("subset")
    search = (f"images/{subset}", "images", subset or "", "") if subset else ("images", "")
    image_path = find_image(base, name, search=search)
    sample = Sample(name=f"{subset}/{name}" if subset else name, image_path=image_path,
                    subset=subset or (None if xml.stem == "annotations" else xml.stem))
    where = f"{xml.name}:{sample.name}"
    if image_path is None:
        ds.problems.append(Problem(path=where, reason=f"image {name!r} not found under {base}/images",
                                   action="kept without image"))
    try:
        width, height = _size_attr(el, "width"), _size_attr(el, "height")
    except FieldError as e:  # the image's own size is measured instead; its shapes are kept
        width, height = image_size(image_path) or (0, 0)
        ds.problems.append(Problem(path=where, action="repaired", reason=(
            f"{e}; " + (f"used the image's size {width}x{height}" if width else "size unknown"))))
    sample.width, sample.height = width or None, height or None
    pending = _Pending(sample)
    groups: dict[tuple[int, str], Shape] = {}
    for k, child in enumerate(el):
        if child.tag in _NO_AREA:
            ds.problems.append(Problem(path=where, reason=f"<{child.tag}> #{k} has no area; visionloop keeps boxes, "
                                       "polygons, masks and tags"))
            continue
        if not child.get("label"):
            ds.problems.append(Problem(path=where, reason=f"<{child.tag}> #{k} has no label"))
            continue
        if child.tag == "tag":
            pending.tags.append(ds.class_index(child.get("label", "")))
            continue
        try:
            shape = _shape(child, ds, width, height)
        except ITEM_ERRORS as e:
            ds.problems.append(Problem(path=where, reason=f"<{child.tag}> #{k}: {e}"))
            continue
        group = child.get("group_id")
        if shape.rings is not None and group not in (None, "", "0"):
            key = (shape.class_id, group)
            if key in groups:
                assert groups[key].rings is not None
                groups[key].rings.append(shape.rings[0])  # type: ignore[union-attr]
                continue
            groups[key] = shape
            shape.attributes["group_id"] = group
        pending.shapes.append(shape)
    pending.shapes = clip_shapes(pending.shapes, width, height, ds, where)
    return pending


@dataclass
class _TrackShape:
    frame: int
    outside: bool
    shape: Shape


def _interpolate(a: Shape, b: Shape, t: float) -> Shape:
    if a.xyxy is not None and b.xyxy is not None:
        xyxy = tuple(float(u + (v - u) * t) for u, v in zip(a.xyxy, b.xyxy, strict=True))
        return Shape(class_id=a.class_id, xyxy=xyxy, attributes=dict(a.attributes), track_id=a.track_id)  # type: ignore[arg-type]
    if a.rings is not None and b.rings is not None and len(a.rings[0]) == len(b.rings[0]):
        ring = [float(u + (v - u) * t) for u, v in zip(a.rings[0], b.rings[0], strict=True)]
        return Shape(class_id=a.class_id, rings=[ring], attributes=dict(a.attributes), track_id=a.track_id)
    return Shape(class_id=a.class_id, xyxy=a.xyxy, rings=a.rings, rle=a.rle, attributes=dict(a.attributes),
                 track_id=a.track_id)


def _track_at(shapes: list[_TrackShape], frame: int) -> Shape | None:
    """The object of a track on ``frame``: None when absent."""
    prev = next_ = None
    for s in shapes:
        if s.frame <= frame:
            prev = s
        elif next_ is None:
            next_ = s
    if prev is None or prev.outside:
        return None
    if prev.frame == frame or next_ is None or next_.outside:
        return _interpolate(prev.shape, prev.shape, 0.0)
    return _interpolate(prev.shape, next_.shape, (frame - prev.frame) / (next_.frame - prev.frame))


def _video_frames(base: Path) -> dict[int, Path]:
    frames: dict[int, Path] = {}
    folder = base / "images"
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            m = _FRAME.search(p.stem)
            if m and is_image_file(p):
                frames.setdefault(int(m.group(1)), p)
    return frames


def _load_video(root: ET.Element, xml: Path, base: Path, ds: FormatDataset) -> list[_Pending]:
    size = root.find("meta/task/original_size")
    width = as_int(size.findtext("width") or 0, "original_size width") if size is not None else 0
    height = as_int(size.findtext("height") or 0, "original_size height") if size is not None else 0
    video_id = (root.findtext("meta/source") or root.findtext("meta/task/name") or xml.stem).strip()
    tracks: dict[int, list[_TrackShape]] = {}
    for t_el in root.iterfind("track"):
        tid = as_int(t_el.get("id", len(tracks)), "track id", hi=2**62)
        label = t_el.get("label", "")
        where = f"{xml.name}:track {tid}"
        if not label:
            ds.problems.append(Problem(path=where, reason="track has no label"))
            continue
        items: list[_TrackShape] = []
        for child in t_el:
            if child.tag in _NO_AREA:
                ds.problems.append(Problem(path=where, reason=f"track of <{child.tag}> has no area; visionloop keeps "
                                           "box and polygon tracks"))
                items = []
                break
            child.set("label", label)
            try:
                shape = _shape(child, ds, width, height)
                frame = as_int(child.get("frame"), "frame", hi=10**9)
            except ITEM_ERRORS as e:
                ds.problems.append(Problem(path=where, reason=f"<{child.tag} frame={child.get('frame')}>: {e}"))
                continue
            shape.track_id = tid
            items.append(_TrackShape(frame, child.get("outside") == "1", shape))
        if items:
            tracks[tid] = sorted(items, key=lambda s: s.frame)
    files = _video_frames(base)
    referenced = {s.frame for items in tracks.values() for s in items}
    out = []
    for frame in sorted(set(files) | referenced):
        path = files.get(frame)
        sample = Sample(name=path.name if path else f"frame_{frame:06d}.png", image_path=path, width=width or None,
                        height=height or None, video_id=video_id, frame_index=frame)
        if path is None:
            ds.problems.append(Problem(path=f"{xml.name}:frame {frame}", reason=f"no image for frame {frame} under "
                                       f"{base}/images", action="kept without image"))
        shapes = [s for items in tracks.values() if (s := _track_at(items, frame)) is not None]
        out.append(_Pending(sample, clip_shapes(shapes, width, height, ds, f"{xml.name}:frame {frame}")))
    return out


def _finish(pending: list[_Pending], ds: FormatDataset) -> None:
    has_area = [s for p in pending for s in p.shapes]
    if any(not s.is_rectangle for s in has_area):
        ds.task = Task.SEGMENTATION
    elif has_area or not any(p.tags for p in pending):
        ds.task = Task.DETECTION
    else:
        ds.task = Task.TAGGING if any(len(set(p.tags)) > 1 for p in pending) else Task.CLASSIFICATION
    for p in pending:
        if ds.task in (Task.DETECTION, Task.SEGMENTATION):
            p.sample.annotation = shapes_to_annotation(p.shapes, segmentation=ds.task == Task.SEGMENTATION)
            if p.tags:
                p.sample.meta["tags"] = sorted({ds.classes[t] for t in p.tags})
        elif ds.task == Task.TAGGING:
            p.sample.annotation = Tags(frozenset(p.tags))
        elif p.tags:
            p.sample.annotation = Label(p.tags[0])
        ds.samples.append(p.sample)


def load(path: Path) -> FormatDataset:
    """Read every CVAT XML file at ``path`` (a file, or the top level of a folder)."""
    path = Path(path)
    files = annotation_files(path, ".xml", _is_cvat_xml, fmt=NAME, reason="expected a CVAT XML 1.1 file "
                             "(<annotations> with <image> or <track>), or a folder with annotations.xml at its top level")
    base = path if path.is_dir() else path.parent
    ds = FormatDataset(task=Task.DETECTION)
    pending: list[_Pending] = []
    parsed = 0
    for xml in files:
        try:
            root = safe_xml.parse(xml).getroot()  # defusedxml: no entity expansion, no external refs
        except (ET.ParseError, *ITEM_ERRORS) as e:
            ds.problems.append(Problem(path=str(xml), reason=f"not well-formed XML: {e}"))
            continue
        parsed += 1
        _labels(root, ds)
        if root.find("track") is not None or (root.findtext("meta/task/mode") or "") == "interpolation":
            try:
                pending += _load_video(root, xml, base, ds)
                ds.meta["video"] = True
            except ITEM_ERRORS as e:
                ds.problems.append(Problem(path=str(xml), reason=f"video annotations not read: {e}"))
        for el in root.iterfind("image"):
            try:
                p = _image_pending(el, xml, base, ds)
            except ITEM_ERRORS as e:
                ds.problems.append(Problem(path=f"{xml.name}:{describe(el.get('name'))}",
                                           reason=f"image skipped: {e}"))
                continue
            if p is not None:
                pending.append(p)
    if not parsed:
        raise FormatError(path, NAME, "no CVAT XML file could be parsed; see the problems: "
                          + "; ".join(p.reason for p in ds.problems[:3]))
    _finish(pending, ds)
    return ds


# ---------------------------------------------------------------------------------------------------------- writing


def _fmt(v: float) -> str:
    return f"{v:.2f}" if abs(v - round(v, 2)) < 1e-9 else f"{v:.4f}".rstrip("0")


def _ring_text(ring: list[float]) -> str:
    return ";".join(f"{_fmt(ring[i])},{_fmt(ring[i + 1])}" for i in range(0, len(ring), 2))


def _mask_attrs(rle: RLE) -> dict[str, str]:
    mask = rle.decode()
    ys, xs = np.nonzero(mask)
    if not len(xs):
        left = top = 0
        crop = mask[:1, :1]
    else:
        left, top = int(xs.min()), int(ys.min())
        crop = mask[top:ys.max() + 1, left:xs.max() + 1]
    flat = crop.reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [len(flat)]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"rle": ", ".join(map(str, counts)), "left": str(left), "top": str(top),
            "width": str(crop.shape[1]), "height": str(crop.shape[0])}


def _shape_elements(parent: ET.Element, shape: Shape, classes: list[str], *, extra: dict[str, str] | None = None,
                    group: int = 0) -> None:
    attrs = dict(shape.attributes)
    occluded = "1" if attrs.pop("occluded", False) in (True, "1", "true", "True") else "0"
    group_id = attrs.pop("group_id", None)
    common = {"label": classes[shape.class_id], **(extra or {}), "occluded": occluded}
    if shape.rle is not None:
        elements = [ET.SubElement(parent, "mask", {**common, **_mask_attrs(shape.rle), "z_order": "0"})]
    elif shape.rings is not None:
        if group_id is None and len(shape.rings) > 1:
            group_id = group
        g = {"group_id": str(group_id)} if group_id is not None else {}
        elements = [ET.SubElement(parent, "polygon", {**common, "points": _ring_text(r), "z_order": "0", **g})
                    for r in shape.rings]
    else:
        assert shape.xyxy is not None
        x1, y1, x2, y2 = shape.xyxy
        elements = [ET.SubElement(parent, "box", {**common, "xtl": _fmt(x1), "ytl": _fmt(y1), "xbr": _fmt(x2),
                                                  "ybr": _fmt(y2), "z_order": "0"})]
    for el in elements:
        for k, v in attrs.items():
            ET.SubElement(el, "attribute", {"name": str(k)}).text = v if isinstance(v, str) else str(v)


def _meta(root: ET.Element, dataset: FormatDataset, *, mode: str, size: int, extra: dict[str, str]) -> ET.Element:
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "size").text = str(size)
    ET.SubElement(task, "mode").text = mode
    for k, v in extra.items():
        ET.SubElement(task, k).text = v
    labels = ET.SubElement(task, "labels")
    for name in dataset.classes:
        ET.SubElement(ET.SubElement(labels, "label"), "name").text = name
    return task


def _size(sample: Sample) -> tuple[int, int] | None:
    if sample.width and sample.height:
        return sample.width, sample.height
    got = image_size(sample.image_path)
    if got is None and isinstance(sample.annotation, SemanticMask):
        h, w = sample.annotation.mask.shape
        return w, h
    return got


def _image_shapes(sample: Sample) -> tuple[list[Shape], list[int]]:
    ann = sample.annotation
    if isinstance(ann, Boxes | Instances):
        return annotation_shapes(ann), []
    if isinstance(ann, Label):
        return [], [ann.class_id]
    if isinstance(ann, Tags):
        return [], sorted(ann.class_ids)
    if isinstance(ann, SemanticMask):
        return [Shape(class_id=c, rle=RLE.encode(ann.mask == c)) for c in ann.class_ids()], []
    return [], []


def _save_images(dataset: FormatDataset, out: Path) -> None:
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    _meta(root, dataset, mode="annotation", size=len(dataset.samples), extra={})
    for i, sample in enumerate(dataset.samples):
        name = sample.name
        attrs = {"id": str(i)}
        if sample.subset and name.startswith(sample.subset + "/"):
            name = name[len(sample.subset) + 1:]
            attrs["subset"] = sample.subset
        attrs["name"] = name
        size = _size(sample)
        if size:
            attrs["width"], attrs["height"] = str(size[0]), str(size[1])
        el = ET.SubElement(root, "image", attrs)
        shapes, tags = _image_shapes(sample)
        for g, shape in enumerate(shapes, start=1001):
            _shape_elements(el, shape, dataset.classes, group=g)
        tag_names = [dataset.classes[t] for t in tags] + list(sample.meta.get("tags", []))
        for t in tag_names:
            ET.SubElement(el, "tag", {"label": t, "source": "manual"})
        copy_image(sample, out / "images", sample.name)
    _write(root, out / "annotations.xml")


def _save_video(dataset: FormatDataset, out: Path) -> None:
    videos = {s.video_id for s in dataset.samples}
    if len(videos) > 1:
        raise FormatError(out, NAME, f"CVAT for video holds one video per file, the dataset has {len(videos)} "
                          f"({', '.join(sorted(map(str, videos))[:5])}); export each video on its own")
    frames = sorted(dataset.samples, key=lambda s: s.frame_index or 0)
    order = [s.frame_index or 0 for s in frames]
    tracks: dict[int, dict[int, Shape]] = {}
    next_free = 1 + max((int(t) for s in frames if isinstance(s.annotation, Boxes | Instances)
                         for t in (boxes_of(s.annotation).track_id if boxes_of(s.annotation).track_id is not None
                                   else [])), default=-1)
    width = height = 0
    for s in frames:
        size = _size(s)
        if size:
            width, height = size
        if not isinstance(s.annotation, Boxes | Instances):
            continue
        for shape in annotation_shapes(s.annotation):
            tid = shape.track_id
            if tid is None:
                tid, next_free = next_free, next_free + 1
            tracks.setdefault(tid, {})[s.frame_index or 0] = shape
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = _meta(root, dataset, mode="interpolation", size=len(frames),
                 extra={"start_frame": str(order[0] if order else 0), "stop_frame": str(order[-1] if order else 0)})
    if width and height:
        size_el = ET.SubElement(task, "original_size")
        ET.SubElement(size_el, "width").text = str(width)
        ET.SubElement(size_el, "height").text = str(height)
    ET.SubElement(root.find("meta"), "source").text = str(next(iter(videos)) or "video")  # type: ignore[arg-type]
    for tid in sorted(tracks):
        per_frame = tracks[tid]
        first = per_frame[min(per_frame)]
        t_el = ET.SubElement(root, "track", {"id": str(tid), "label": dataset.classes[first.class_id]})
        for k, frame in enumerate(order):
            shape = per_frame.get(frame)
            if shape is not None:
                _shape_elements(t_el, shape, dataset.classes,
                                extra={"frame": str(frame), "outside": "0", "keyframe": "1"})
            elif k > 0 and order[k - 1] in per_frame:
                _shape_elements(t_el, per_frame[order[k - 1]], dataset.classes,
                                extra={"frame": str(frame), "outside": "1", "keyframe": "1"})
        for el in t_el:
            el.attrib.pop("label", None)
    for s in frames:
        ext = s.image_path.suffix if s.image_path else Path(s.name).suffix or ".png"
        copy_image(s, out / "images", f"frame_{s.frame_index or 0:06d}{ext}")
    _write(root, out / "annotations.xml")


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold (control characters): written as ``_`` so the file stays readable."""


def _xml_safe(root: ET.Element) -> None:
    for el in root.iter():
        if el.text:
            el.text = _NOT_XML.sub("_", el.text)
        for k, v in el.attrib.items():
            el.set(k, _NOT_XML.sub("_", v))


def _write(root: ET.Element, dest: Path) -> None:
    _xml_safe(root)
    ET.indent(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".xml.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(dest)


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``out/annotations.xml`` and ``out/images/``: "for video" when the samples are frames of one video."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = safe_for_export(dataset, per_subset=False)  # names from data files made safe paths under images/
    if dataset.samples and all(s.video_id is not None and s.frame_index is not None for s in dataset.samples):
        _save_video(dataset, out)
    else:
        _save_images(dataset, out)
