"""COCO JSON: boxes (detection), polygons and RLE (instance segmentation), bare category labels (classification).

Accepted layouts (``path`` may be the JSON file itself or the dataset folder):

- ``annotations/instances_<subset>.json`` with images in ``images/<subset>/`` (official COCO), ``<subset>/`` (mmdet),
  ``images/`` or next to the JSON;
- ``<subset>/_annotations.coco.json`` with the images beside it (Roboflow);
- any ``*.json`` holding ``images`` and ``annotations`` (Kaggle, CVAT and Label Studio COCO exports).

When a folder holds several kinds (``instances_``, ``person_keypoints_``, ``labels_``, ``image_info_``, ...), the first
of that list present is read; captions and panoptic files are not annotations this package carries.

What is read: categories by name (ids need not be contiguous); images by ``file_name``; ``bbox`` as x, y, width,
height pixels (converted to xyxy); ``segmentation`` as polygons, uncompressed RLE (``iscrowd`` 1) or compressed RLE
(all kept as :class:`~visionloop.core.annotations.RLE` in the compressed form); ``iscrowd`` 1 becomes the box attribute
``iscrowd: True``; a CVAT-style ``attributes`` dict becomes box attributes; ``score`` and ``track_id`` when present.
The task is segmentation when any annotation has a segmentation, detection when any has a bbox, else classification
(at most one category per image) or tagging.

Export writes ``annotations/instances_<subset>.json`` (``labels_`` for classification/tagging; no suffix when the
samples have no subset) and copies images to ``images/<subset>/``; category ids are 1..N in class order. The files load
in pycocotools (``COCO(path)``, ``loadRes``, ``COCOeval``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from visionloop.core.annotations import RLE, Annotation, Boxes, Instances, Label, Polygons, SemanticMask, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._boxes import check_boxes, polygon_bbox, rect_polygon
from visionloop.formats._fields import (
    ITEM_ERRORS,
    FieldError,
    as_dict,
    as_float,
    as_int,
    as_key,
    as_list,
    as_text,
    check_canvas,
    describe,
    read_json_file,
)
from visionloop.formats._paths import (
    ImageFinder,
    UnsafePathError,
    image_size,
    inside,
    read_head,
    read_tail,
    relative_in_subset,
    split_of,
)
from visionloop.formats.base import FormatDataset, Problem, Sample, copy_image, safe_for_export

__all__ = ["NAME", "TASKS", "detect", "load", "save"]

NAME = "coco"
TITLE = "COCO JSON"
TASKS = frozenset({Task.DETECTION, Task.SEGMENTATION, Task.CLASSIFICATION, Task.TAGGING})

_KINDS = ("instances", "person_keypoints", "stuff", "labels", "image_info")
"""File-name prefixes read, in order of preference."""
_UNSUPPORTED = ("captions", "panoptic")
_REFUSED = {
    "captions": "COCO captions are sentences, not boxes, masks or labels; visionloop does not import them",
    "panoptic": ("COCO panoptic annotations (segments_info with PNG masks) are not read; import the matching "
                 "instances_*.json, or convert with panopticapi's panoptic2detection_coco_format"),
}
"""Why each kind of COCO file visionloop does not import is refused (said, never imported as plain images)."""
_EXPECTED = (
    "expected a COCO JSON file (a dict with 'images', 'annotations' and 'categories'), or a folder holding "
    "annotations/instances_<subset>.json or <subset>/_annotations.coco.json"
)


def _looks_like_coco(path: Path) -> bool:
    head = read_head(path, 65536)
    if not head.lstrip().startswith("{"):
        return False
    text = head + read_tail(path, 65536) if path.stat().st_size > 65536 else head
    return '"images"' in text and ('"annotations"' in text or '"categories"' in text)


def _candidate_jsons(root: Path) -> list[Path]:
    found: list[Path] = []
    for pattern in ("annotations/*.json", "*.json", "*/*.json"):
        for p in inside(root, sorted(root.glob(pattern))):
            if p.is_file() and p not in found:
                found.append(p)
    return found


def _kind_subset(path: Path) -> tuple[str, str | None]:
    stem = path.name[: -len(".json")] if path.name.lower().endswith(".json") else path.stem
    stem = stem.removesuffix(".coco")
    for kind in (*_KINDS, *_UNSUPPORTED):
        if stem == kind:
            return kind, split_of(path.parent.name) if path.parent.name != "annotations" else None
        if stem.startswith(kind + "_"):
            return kind, stem[len(kind) + 1:] or None
    parent = path.parent.name
    return "instances", parent if split_of(parent) == parent.lower() else None


def _named_like_coco(path: Path) -> bool:
    """``annotations/instances_*.json``, ``_annotations.coco.json`` and the like: read (and reported when broken)
    even if they do not parse."""
    return path.name.endswith(".coco.json") or (
        path.parent.name == "annotations" and any(path.name.startswith(k) for k in _KINDS))


def detect(path: Path) -> float:
    """0.9 for COCO JSON; 0.2 for a folder holding only captions or panoptic files, so that loading it says why they
    are refused instead of the folder passing for plain images."""
    path = Path(path)
    if path.is_file():
        return 0.9 if path.suffix.lower() == ".json" and _looks_like_coco(path) else 0.0
    if not path.is_dir():
        return 0.0
    refused = False
    for i, p in enumerate(_candidate_jsons(path)):
        if i >= 20:
            break
        kind = _kind_subset(p)[0]
        if kind in _KINDS and _looks_like_coco(p):
            return 0.9 if (p.parent.name == "annotations" or p.name.endswith(".coco.json")) else 0.8
        refused = refused or (kind in _UNSUPPORTED and p.parent.name == "annotations")
    return 0.2 if refused else 0.0


def _files_to_read(path: Path) -> tuple[list[Path], Path]:
    if path.is_file():
        root = path.parent.parent if path.parent.name == "annotations" else path.parent
        return [path], root
    if not path.is_dir():
        raise FormatError(path, NAME, f"no such file or folder; {_EXPECTED}")
    cands = [p for p in _candidate_jsons(path) if _looks_like_coco(p) or _named_like_coco(p)]
    kinds = {p: _kind_subset(p)[0] for p in cands}
    for kind in _KINDS:
        chosen = [p for p in cands if kinds[p] == kind]
        if chosen:
            return chosen, path
    found = sorted({_kind_subset(p)[0] for p in _candidate_jsons(path)} & set(_UNSUPPORTED))
    if found:
        raise FormatError(path, NAME, f"found only {', '.join(found)} files: "
                          + "; ".join(_REFUSED[k] for k in found))
    raise FormatError(path, NAME, _EXPECTED)


def _content_kind(data: dict[str, Any]) -> str | None:
    """"panoptic" or "captions" when the annotations are of that kind (whatever the file is called), else None."""
    anns = data.get("annotations")
    first = next((a for a in anns if isinstance(a, dict)), None) if isinstance(anns, list) else None
    if first is None or "category_id" in first:
        return None
    if "segments_info" in first:
        return "panoptic"
    return "captions" if "caption" in first else None


def _image_folders(json_path: Path, root: Path, subset: str | None) -> list[Path]:
    d = json_path.parent
    up = d.parent
    folders = [d]
    for base in dict.fromkeys([up, root]):
        if subset:
            folders += [base / "images" / subset, base / subset]
        folders += [base / "images", base]
    folders += [d / "images"]
    return folders


def _nonempty(seg: Any) -> bool:
    if isinstance(seg, dict):
        return bool(seg)
    return isinstance(seg, list) and any(isinstance(r, list) and r for r in seg)


def load(path: Path) -> FormatDataset:
    """Read COCO JSON(s); see the module docstring for the accepted layouts."""
    path = Path(path)
    files, root = _files_to_read(path)
    problems: list[Problem] = []
    if path.is_dir():
        for f in _candidate_jsons(path):
            if (kind := _kind_subset(f)[0]) in _REFUSED and f.parent.name == "annotations":
                problems.append(Problem(path=_rel(f, root), reason=_REFUSED[kind], action="not imported"))
    parsed: list[tuple[Path, str | None, dict[str, Any]]] = []
    for f in files:
        where = _rel(f, root)
        try:
            data = read_json_file(f)
        except (OSError, ValueError) as e:
            problems.append(Problem(path=where, reason=f"not readable: {e}"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            problems.append(Problem(path=where, reason="not a COCO file: expected a JSON object with an 'images' list"))
            continue
        kind = _content_kind(data) or _kind_subset(f)[0]
        if kind in _REFUSED:
            problems.append(Problem(path=where, reason=_REFUSED[kind]))
            continue
        for key in ("annotations", "categories"):
            if not isinstance(data.get(key, []), list):
                problems.append(Problem(path=where, reason=f"'{key}' is not a list; ignored"))
                data[key] = []
        parsed.append((f, _kind_subset(f)[1], data))
    if not parsed:
        raise FormatError(path, NAME, "no readable COCO file: " + "; ".join(f"{p.path}: {p.reason}" for p in problems))

    all_anns = [a for _, _, d in parsed for a in d.get("annotations") or [] if isinstance(a, dict)]
    if any(_nonempty(a.get("segmentation")) for a in all_anns):
        task = Task.SEGMENTATION
    elif any(a.get("bbox") for a in all_anns) or not all_anns:
        task = Task.DETECTION
    else:
        per_image: dict[tuple[int, Any], set[Any]] = defaultdict(set)
        for n, (_, _, d) in enumerate(parsed):
            for a in d.get("annotations") or []:
                if isinstance(a, dict):
                    per_image[(n, repr(a.get("image_id")))].add(repr(a.get("category_id")))
        task = Task.TAGGING if any(len(v) > 1 for v in per_image.values()) else Task.CLASSIFICATION
    ds = FormatDataset(task=task, problems=problems, meta={"coco_files": [str(f) for f, _, _ in parsed]})
    for f, subset, data in parsed:
        _read_file(ds, f, root, subset, data, has_annotations=bool(all_anns))
    return ds


def _rel(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def _read_file(ds: FormatDataset, f: Path, root: Path, subset: str | None, data: dict[str, Any], *,
               has_annotations: bool) -> None:
    where = _rel(f, root)
    cats: dict[Any, int] = {}
    for c in data.get("categories") or []:
        try:
            c = as_dict(c, "category")
            cid = as_key(c.get("id"), "category id")
            name = c.get("name")
            cats[cid] = ds.class_index(as_text(name, "category name", max_chars=256) if name not in (None, "")
                                       else f"category_{cid}")
        except FieldError as e:
            ds.problems.append(Problem(path=where, reason=f"category ignored: {e}"))
    finder = ImageFinder(_image_folders(f, root, subset))
    samples: dict[Any, Sample] = {}
    for k, img in enumerate(data["images"]):
        try:
            sample = _image_sample(img, finder, subset, where, root, ds)
        except ITEM_ERRORS as e:
            ds.problems.append(Problem(path=f"{where}: images[{k}]", reason=f"image entry skipped: {e}"))
            continue
        image_id = sample.meta["coco_image_id"]
        if image_id in samples:
            ds.problems.append(Problem(path=where, reason=f"image id {image_id} listed twice; the second is ignored"))
            continue
        samples[image_id] = sample
    grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for k, a in enumerate(data.get("annotations") or []):
        try:
            a = as_dict(a, "annotation")
            image_id, category_id = as_key(a.get("image_id"), "image_id"), as_key(a.get("category_id"), "category_id")
        except FieldError as e:
            ds.problems.append(Problem(path=f"{where}: annotations[{k}]", reason=f"annotation skipped: {e}"))
            continue
        if image_id not in samples:
            ds.problems.append(Problem(path=where, reason=(
                f"annotation {describe(a.get('id'))} refers to image_id {image_id!r}, which is not in 'images'")))
        elif category_id not in cats:
            ds.problems.append(Problem(path=where, reason=(
                f"annotation {describe(a.get('id'))} has unknown category_id {category_id!r} "
                f"(categories: {sorted(cats, key=str)[:20]})")))
        else:
            grouped[image_id].append(a)
    for image_id, sample in samples.items():
        anns = grouped.get(image_id, [])
        item = f"{where}: {sample.name}"
        if ds.task in (Task.CLASSIFICATION, Task.TAGGING):
            ids = sorted({cats[a["category_id"]] for a in anns})
            if ids:
                sample.annotation = Label(ids[0]) if ds.task is Task.CLASSIFICATION else Tags(frozenset(ids))
        elif has_annotations or anns:
            sample.annotation = _boxes_or_instances(ds, anns, cats, sample, item)
        ds.samples.append(sample)


def _image_sample(img: Any, finder: ImageFinder, subset: str | None, where: str, root: Path,
                  ds: FormatDataset) -> Sample:
    """The sample of one ``images`` entry; FieldError when a field is wrong."""
    img = as_dict(img, "image entry")
    image_id = as_key(img.get("id"), "image id")
    name = as_text(img.get("file_name"), "file_name", max_chars=1024).replace("\\", "/")
    try:
        image_path = finder.find(name)
    except UnsafePathError as e:  # absolute or climbing out: only its file name is looked for, inside the dataset
        base = name.rsplit("/", 1)[-1]
        image_path = finder.find(base) if base not in ("", ".", "..") else None
        if image_path is None:
            raise
        ds.problems.append(Problem(path=f"{where}: {describe(name)}", action="repaired", reason=(
            f"file_name {describe(name)} points outside the dataset ({e.reason}); used {base!r} found inside it")))
        name = base
    if image_path is None and "/" in name:
        image_path = finder.find(name.rsplit("/", 1)[-1])
    sample = Sample(name=name, image_path=image_path, subset=subset, meta={"coco_image_id": image_id})
    try:
        w, h = img.get("width"), img.get("height")
        sample.width = as_int(w, "width", lo=1) if w not in (None, 0) else None
        sample.height = as_int(h, "height", lo=1) if h not in (None, 0) else None
    except FieldError as e:  # the image and its annotations are kept; the size is measured from the file on import
        ds.problems.append(Problem(path=f"{where}: {name}", action="ignored", reason=str(e)))
        sample.width = sample.height = None
    if image_path is None:
        ds.problems.append(Problem(path=f"{where}: {name}", reason=(
            f"image {name!r} not found (looked in {', '.join(_rel(d, root) or '.' for d in finder.folders)})")))
    return sample


def _parse_rle(seg: dict[str, Any], sample: Sample) -> tuple[RLE, str]:
    size = as_list(seg.get("size"), "segmentation size")
    if len(size) != 2:
        raise FieldError("segmentation size", "[height, width]", size)
    h, w = (as_int(v, "segmentation size", lo=1) for v in size)
    check_canvas(w, h, "segmentation size")
    counts = seg.get("counts")
    if isinstance(counts, list):
        runs = [as_int(v, "RLE counts", hi=h * w) for v in counts]
        if sum(runs) != h * w:
            raise FieldError("RLE counts", f"run lengths adding up to {h}x{w} = {h * w}", f"a sum of {sum(runs)}")
        counts = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if not isinstance(counts, str) or not counts:
        raise FieldError("RLE counts", "a list of run lengths or a compressed COCO RLE string", counts)
    rle = RLE(size=(h, w), counts=counts)  # checks the runs before pycocotools, which trusts them, ever sees them
    note = ""
    if sample.width and sample.height and (w, h) != (sample.width, sample.height):
        note = f"RLE size {w}x{h} differs from the image size {sample.width}x{sample.height}"
    return rle, note


def _parse_seg(seg: Any, sample: Sample) -> tuple[Polygons | RLE | None, str]:
    """(segmentation, problem text or ''); FieldError when a value is of the wrong type or range."""
    if isinstance(seg, list):
        rings = [[as_float(v, "polygon coordinate") for v in r] for r in seg
                 if isinstance(r, list) and len(r) >= 6 and len(r) % 2 == 0]
        bad = len(seg) - len(rings)
        return (rings or None), (f"{bad} polygon ring(s) with fewer than 3 points dropped" if bad else "")
    if isinstance(seg, dict) and "counts" in seg:
        return _parse_rle(seg, sample)
    return None, f"unreadable segmentation {describe(seg)}"


def _bbox(bbox: Any) -> list[float] | None:
    """xyxy of a COCO ``bbox`` (x, y, width, height); None when absent; FieldError when malformed."""
    if bbox in (None, []):
        return None
    values = as_list(bbox, "bbox")
    if len(values) != 4:
        raise FieldError("bbox", "[x, y, width, height]", bbox)
    x, y, w, h = (as_float(v, "bbox") for v in values)
    return [x, y, x + w, y + h]


def _annotation_shape(a: dict[str, Any], sample: Sample, segmented: bool, ds: FormatDataset, item: str
                      ) -> tuple[list[float], Polygons | RLE | None] | None:
    """(xyxy, segmentation) of one annotation, or None when it has neither (reported)."""
    raw = a.get("segmentation")
    if _nonempty(raw):
        seg, note = _parse_seg(raw, sample)
    else:
        seg, note = None, ("" if raw is None or isinstance(raw, list | dict) else f"unreadable segmentation "
                           f"{describe(raw)} ignored")
    if note:
        ds.problems.append(Problem(path=item, action="kept", reason=f"annotation {describe(a.get('id'))}: {note}"))
    box = _bbox(a.get("bbox"))
    if box is None and seg is not None:
        box = (polygon_bbox(seg) if isinstance(seg, list) else
               _xywh_to_xyxy(mask_utils.toBbox(seg.to_coco()).tolist()))
    if box is None:
        ds.problems.append(Problem(path=item, reason=f"annotation {describe(a.get('id'))} has neither bbox nor "
                                   "segmentation"))
        return None
    if segmented and seg is None:
        seg = rect_polygon(box) if box[2] > box[0] and box[3] > box[1] else None
        if seg is None:
            ds.problems.append(Problem(path=item, reason=f"annotation {describe(a.get('id'))} has no segmentation "
                                       "and an empty box"))
            return None
        ds.problems.append(Problem(path=item, action="repaired", reason=(
            f"annotation {describe(a.get('id'))} has no segmentation; its bbox is used as a rectangle outline")))
    return box, seg


def _boxes_or_instances(ds: FormatDataset, anns: list[dict[str, Any]], cats: dict[Any, int], sample: Sample,
                        item: str) -> Annotation:
    segmented = ds.task is Task.SEGMENTATION
    raw_boxes: list[list[float]] = []
    segs: list[Polygons | RLE] = []
    class_ids: list[int] = []
    attrs: list[dict[str, Any]] = []
    scores: list[float] = []
    tracks: list[int] = []
    for a in anns:
        try:
            shape = _annotation_shape(a, sample, segmented, ds, item)
            score = as_float(a["score"], "score", lo=0, hi=1) if a.get("score") is not None else -1.0
            track = as_int(a["track_id"], "track_id", hi=2**62) if a.get("track_id") is not None else -1
        except ITEM_ERRORS as e:
            ds.problems.append(Problem(path=item, reason=f"annotation {describe(a.get('id'))} skipped: {e}"))
            continue
        if shape is None:
            continue
        at: dict[str, Any] = dict(a["attributes"]) if isinstance(a.get("attributes"), dict) else {}
        if a.get("iscrowd"):
            at["iscrowd"] = True
        raw_boxes.append(shape[0])
        segs.append(shape[1])  # type: ignore[arg-type]
        class_ids.append(cats[a["category_id"]])
        attrs.append(at)
        scores.append(score)
        tracks.append(track)
    size = (sample.width, sample.height) if sample.width and sample.height else None
    labels = [ds.classes[c] for c in class_ids]
    xyxy, kept = check_boxes(raw_boxes, size=size, where=item, problems=ds.problems, labels=labels)
    score = np.asarray([scores[i] for i in kept]) if kept and all(scores[i] >= 0 for i in kept) else None
    track = np.asarray([tracks[i] for i in kept]) if kept and all(tracks[i] >= 0 for i in kept) else None
    boxes = Boxes(xyxy, np.asarray([class_ids[i] for i in kept], dtype=np.int64), score, track,
                  [attrs[i] for i in kept])
    if segmented:
        return Instances(boxes, [segs[i] for i in kept])
    return boxes


def _xywh_to_xyxy(b: list[float]) -> list[float]:
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


# --- export -----------------------------------------------------------------------------------------------------


def _polygon_area(rings: Polygons) -> float:
    total = 0.0
    for r in rings:
        xs, ys = np.asarray(r[0::2], dtype=np.float64), np.asarray(r[1::2], dtype=np.float64)
        total += 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
    return total


def _box_entries(boxes: Boxes) -> list[dict[str, Any]]:
    out = []
    for i, (x1, y1, x2, y2) in enumerate(boxes.xyxy.tolist()):
        at = dict(boxes.attributes[i]) if boxes.attributes else {}
        entry: dict[str, Any] = {
            "category_id": int(boxes.class_id[i]) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": (x2 - x1) * (y2 - y1), "segmentation": [], "iscrowd": 1 if at.pop("iscrowd", False) else 0,
        }
        if at:
            entry["attributes"] = at
        if boxes.score is not None:
            entry["score"] = float(boxes.score[i])
        if boxes.track_id is not None:
            entry["track_id"] = int(boxes.track_id[i])
        out.append(entry)
    return out


def _entries(ann: Annotation | None) -> list[dict[str, Any]]:
    if ann is None:
        return []
    if isinstance(ann, Label):
        return [{"category_id": ann.class_id + 1}]
    if isinstance(ann, Tags):
        return [{"category_id": c + 1} for c in sorted(ann.class_ids)]
    if isinstance(ann, Boxes):
        return _box_entries(ann)
    if isinstance(ann, Instances):
        entries = _box_entries(ann.boxes)
        for entry, seg in zip(entries, ann.segmentations, strict=True):
            if isinstance(seg, RLE):
                entry["segmentation"] = {"size": list(seg.size), "counts": seg.counts}
                entry["area"] = float(seg.area())
            else:
                entry["segmentation"] = [[float(v) for v in r] for r in seg]
                entry["area"] = _polygon_area(seg)
        return entries
    if isinstance(ann, SemanticMask):
        entries = []
        for c in ann.class_ids():
            rle = RLE.encode(ann.mask == c)
            x, y, w, h = mask_utils.toBbox(rle.to_coco()).tolist()
            entries.append({"category_id": c + 1, "bbox": [x, y, w, h], "area": float(rle.area()), "iscrowd": 0,
                            "segmentation": {"size": list(rle.size), "counts": rle.counts}})
        return entries
    raise FormatError(None, NAME, f"cannot write a {type(ann).__name__} annotation as COCO")


def _size(sample: Sample) -> tuple[int, int]:
    if sample.width and sample.height:
        return sample.width, sample.height
    if sample.image_path is not None and (wh := image_size(sample.image_path)):
        return wh
    ann = sample.annotation
    if isinstance(ann, SemanticMask):
        return ann.mask.shape[1], ann.mask.shape[0]
    if isinstance(ann, Instances):
        for seg in ann.segmentations:
            if isinstance(seg, RLE):
                return seg.size[1], seg.size[0]
    return 0, 0


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``annotations/<kind>[_<subset>].json`` and copy the images to ``images/[<subset>/]``."""
    out = Path(out)
    if dataset.task not in TASKS:
        raise FormatError(out, NAME, f"COCO carries {', '.join(sorted(TASKS))}, not {dataset.task}")
    dataset = safe_for_export(dataset)  # names and subsets from data files become safe paths under ``out``
    kind = "instances" if dataset.task in (Task.DETECTION, Task.SEGMENTATION) else "labels"
    categories = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(dataset.classes)]
    by_subset: dict[str | None, list[Sample]] = defaultdict(list)
    for s in dataset.samples:
        by_subset[s.subset].append(s)
    if not by_subset:
        by_subset[None] = []
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for subset, samples in by_subset.items():
        image_dir = out / "images" / subset if subset else out / "images"
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for image_id, s in enumerate(samples, 1):
            rel = relative_in_subset(s)
            copy_image(s, image_dir, rel)
            w, h = _size(s)
            images.append({"id": image_id, "file_name": rel, "width": w, "height": h})
            for entry in _entries(s.annotation):
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **entry})
        doc = {"info": {"description": "exported by visionloop"}, "licenses": [], "categories": categories,
               "images": images, "annotations": annotations}
        name = f"{kind}_{subset}.json" if subset else f"{kind}.json"
        (out / "annotations" / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
