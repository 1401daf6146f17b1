"""Information reduction: derive a simpler project from a dataset version.

* segmentation -> **detection**: one box per instance (the extent of its mask), or per connected component of each
  class of a semantic mask;
* detection / segmentation (/ classification) -> **tagging**: the set of classes present;
* detection / segmentation -> **crops**: a classification project of box crops (each box enlarged by ``margin``),
  so a detector's output can feed a classifier.

The derived project is a NEW project with the same class names and flags. Every derived image carries
``meta["split_hint"]`` = its split in the source version, and crops carry ``meta["group"]`` = the parent image's
sha256; :func:`visionloop.storage.versions.create_version` honours both, so a version of the derived project keeps the
source version's split and never spreads crops of one image over train and test.
"""

from __future__ import annotations

import io
import math
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from visionloop.core.annotations import RLE, Annotation, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import ConflictError, ImageError
from visionloop.core.imageio import decode
from visionloop.core.ontology import Ontology
from visionloop.core.task import Task
from visionloop.storage.blobs import sha256_bytes
from visionloop.storage.project import CONFIG_FILE, NewImage, Project
from visionloop.storage.versions import VersionItem, get_version, version_items

__all__ = [
    "DeriveReport",
    "DeriveTarget",
    "boxes_from_annotation",
    "boxes_from_instances",
    "boxes_from_semantic",
    "crop_region",
    "derive_project",
    "tags_from_annotation",
]

_BATCH = 256

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)`` over the source version's items."""


class DeriveTarget(StrEnum):
    DETECTION = "detection"
    TAGGING = "tagging"
    CROPS = "crops"


_OUT_TASK = {DeriveTarget.DETECTION: Task.DETECTION, DeriveTarget.TAGGING: Task.TAGGING,
             DeriveTarget.CROPS: Task.CLASSIFICATION}
_FROM = {
    DeriveTarget.DETECTION: {Task.SEGMENTATION},
    DeriveTarget.TAGGING: {Task.SEGMENTATION, Task.DETECTION, Task.CLASSIFICATION},
    DeriveTarget.CROPS: {Task.SEGMENTATION, Task.DETECTION},
}


@dataclass(frozen=True)
class DeriveReport:
    """What :func:`derive_project` made.

    ``objects``: boxes written (detection), tags written (tagging) or crops made (crops).
    ``skipped``: reason -> count (``too_small``, ``empty_mask``, ``duplicate_crop``, ``unknown_class``,
    ``undecodable``). ``splits``: derived images per source split (their ``split_hint``).
    """

    source_project: str
    version: str
    to: DeriveTarget
    out: Path
    task: Task
    images: int
    annotations: int
    objects: int
    skipped: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source_project": self.source_project, "version": self.version, "to": self.to.value,
            "out": str(self.out), "task": self.task.value, "images": self.images, "annotations": self.annotations,
            "objects": self.objects, "skipped": self.skipped, "splits": self.splits, "classes": self.classes,
        }


# ---- pure conversions -------------------------------------------------------------------------------------------


def boxes_from_instances(ann: Instances, *, height: int, width: int) -> tuple[Boxes, int]:
    """Boxes (xyxy pixels) that bound each instance's mask; returns the boxes and how many empty masks were dropped.

    RLE masks give the pixel extent: a mask whose pixels span columns ``c0..c1`` gives ``x1 = c0, x2 = c1 + 1``
    (pixel edges). Polygons give the extent of their vertices, clipped to the image. Track ids, scores and
    attributes of kept instances are carried over.
    """
    from pycocotools import mask as mask_utils

    keep: list[int] = []
    rows: list[list[float]] = []
    for i, seg in enumerate(ann.segmentations):
        if isinstance(seg, RLE):
            coco = seg.to_coco()
            if mask_utils.area(coco) == 0:
                continue
            x, y, w, h = (float(v) for v in mask_utils.toBbox(coco))
            rows.append([x, y, x + w, y + h])
        else:
            pts = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in seg])
            x1, y1 = np.clip(pts.min(axis=0), 0, [width, height])
            x2, y2 = np.clip(pts.max(axis=0), 0, [width, height])
            if x2 <= x1 or y2 <= y1:
                continue
            rows.append([float(x1), float(y1), float(x2), float(y2)])
        keep.append(i)
    b = ann.boxes
    idx = np.asarray(keep, dtype=np.int64)
    boxes = Boxes(
        np.asarray(rows, dtype=np.float64).reshape(-1, 4), b.class_id[idx],
        None if b.score is None else b.score[idx], None if b.track_id is None else b.track_id[idx],
        None if b.attributes is None else [b.attributes[i] for i in keep],
    )
    return boxes, len(ann.segmentations) - len(keep)


def boxes_from_semantic(
    ann: SemanticMask, *, class_ids: Sequence[int] | None = None, min_size: int = 1
) -> tuple[Boxes, int]:
    """One box per 8-connected component of each class in a semantic mask; returns boxes and components dropped.

    ``class_ids``: the classes to box (default: all but ``ignore_index``; pass the ontology's ids to skip background
    0). Components whose box is narrower or shorter than ``min_size`` pixels are dropped as speckle.
    """
    from scipy import ndimage

    wanted = set(ann.class_ids()) if class_ids is None else set(class_ids) & set(ann.class_ids())
    rows: list[list[float]] = []
    ids: list[int] = []
    dropped = 0
    structure = np.ones((3, 3), dtype=bool)
    for cid in sorted(wanted):
        labels, n = ndimage.label(ann.mask == cid, structure=structure)
        for sl in ndimage.find_objects(labels)[:n]:
            if sl is None:
                continue
            y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            if (x1 - x0) < min_size or (y1 - y0) < min_size:
                dropped += 1
                continue
            rows.append([float(x0), float(y0), float(x1), float(y1)])
            ids.append(cid)
    return Boxes(np.asarray(rows, dtype=np.float64).reshape(-1, 4), np.asarray(ids, dtype=np.int64)), dropped


def boxes_from_annotation(
    ann: Annotation, *, height: int, width: int, class_ids: Sequence[int] | None = None, min_size: int = 1
) -> tuple[Boxes, int]:
    """Boxes of a detection or segmentation annotation (see the two functions above); Boxes pass through."""
    if isinstance(ann, Boxes):
        return ann, 0
    if isinstance(ann, Instances):
        return boxes_from_instances(ann, height=height, width=width)
    if isinstance(ann, SemanticMask):
        return boxes_from_semantic(ann, class_ids=class_ids, min_size=min_size)
    raise ConflictError(f"a {type(ann).__name__} has no boxes; derive boxes from detection or segmentation data")


def tags_from_annotation(ann: Annotation, *, class_ids: Sequence[int] | None = None) -> Tags:
    """The set of classes present (restricted to ``class_ids`` when given, e.g. to drop semantic background)."""
    if isinstance(ann, Label):
        present = {ann.class_id}
    elif isinstance(ann, Tags):
        present = set(ann.class_ids)
    elif isinstance(ann, Boxes):
        present = set(ann.class_id.tolist())
    elif isinstance(ann, Instances):
        present = set(ann.boxes.class_id.tolist())
    else:
        present = set(ann.class_ids())
    if class_ids is not None:
        present &= set(class_ids)
    return Tags(frozenset(present))


def crop_region(xyxy: Sequence[float], *, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel region ``(x1, y1, x2, y2)`` (x2/y2 exclusive) of a box enlarged by ``margin``.

    ``margin`` is a fraction of the box's width (added left and right) and height (added top and bottom); the region
    is rounded outwards and clipped to the image.
    """
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    mw, mh = margin * (x2 - x1), margin * (y2 - y1)
    rx1 = max(0, math.floor(x1 - mw))
    ry1 = max(0, math.floor(y1 - mh))
    rx2 = min(width, math.ceil(x2 + mw))
    ry2 = min(height, math.ceil(y2 + mh))
    return rx1, ry1, max(rx2, rx1 + 1), max(ry2, ry1 + 1)


# ---- the derivation ---------------------------------------------------------------------------------------------


def _check_out(out: Path) -> None:
    if (out / CONFIG_FILE).exists():
        raise ConflictError(f"{out} is already a visionloop project; give derive a new directory")
    if out.exists() and any(out.iterdir()):
        raise ConflictError(f"{out} exists and is not empty; give derive a new or empty directory")


def _copy_classes(onto: Ontology, new: Project) -> dict[int, int]:
    """Create the snapshot's active classes in ``new``; returns source id -> new id."""
    mapping: dict[int, int] = {}
    names = {c.id: c.name for c in onto.active}
    for c in onto.active:
        parent = names.get(c.parent_id) if c.parent_id is not None else None
        if parent is not None and new.ontology().get(parent) is None:
            parent = None
        made = new.add_class(c.name, orientation_sensitive=c.orientation_sensitive,
                             colour_sensitive=c.colour_sensitive, colour=c.colour, parent=parent)
        mapping[c.id] = made.id
    return mapping


@dataclass
class _Out:
    image: NewImage
    data: bytes | None
    annotation: Annotation | None


def _derived_meta(item: VersionItem, project: Project, version: str) -> dict[str, Any]:
    return {**item.image.meta, "split_hint": item.split,
            "derived_from": {"project": project.name, "version": version, "image_id": item.image.id}}


def _map_boxes(boxes: Boxes, mapping: dict[int, int]) -> tuple[Boxes, int]:
    keep = np.asarray([int(c) in mapping for c in boxes.class_id], dtype=bool)
    idx = np.flatnonzero(keep)
    ids = np.asarray([mapping[int(c)] for c in boxes.class_id[idx]], dtype=np.int64)
    out = Boxes(boxes.xyxy[idx], ids, None if boxes.score is None else boxes.score[idx],
                None if boxes.track_id is None else boxes.track_id[idx],
                None if boxes.attributes is None else [boxes.attributes[i] for i in idx])
    return out, int((~keep).sum())


def _one_to_one(item: VersionItem, project: Project, version: str, to: DeriveTarget, mapping: dict[int, int],
                min_size: int, skipped: Counter[str]) -> _Out:
    im = item.image
    new_image = NewImage(
        sha256=im.sha256, width=im.width, height=im.height, format=im.format, name=im.name,
        source_uri=im.source_uri, video_id=im.video_id, frame_index=im.frame_index, timestamp=im.timestamp,
        phash=im.phash, meta=_derived_meta(item, project, version),
    )
    ann: Annotation | None = None
    if item.annotation is not None:
        if to is DeriveTarget.TAGGING:
            tags = tags_from_annotation(item.annotation)
            unknown = [c for c in tags.class_ids if c not in mapping]
            if unknown and not isinstance(item.annotation, SemanticMask):
                skipped["unknown_class"] += len(unknown)
            ann = Tags(frozenset(mapping[c] for c in tags.class_ids if c in mapping))
        else:
            boxes, dropped = boxes_from_annotation(item.annotation, height=im.height, width=im.width,
                                                   class_ids=list(mapping), min_size=min_size)
            skipped["empty_mask" if isinstance(item.annotation, Instances) else "too_small"] += dropped
            ann, unknown_n = _map_boxes(boxes, mapping)
            skipped["unknown_class"] += unknown_n
    return _Out(new_image, None, ann)


def _crops(item: VersionItem, project: Project, version: str, mapping: dict[int, int], margin: float,
           min_size: int, skipped: Counter[str]) -> list[_Out]:
    im = item.image
    if item.annotation is None:
        return []
    boxes, dropped = boxes_from_annotation(item.annotation, height=im.height, width=im.width,
                                           class_ids=list(mapping), min_size=min_size)
    skipped["empty_mask" if isinstance(item.annotation, Instances) else "too_small"] += dropped
    if not len(boxes):
        return []
    try:
        picture = decode(project.blobs.read(im.sha256), max_pixels=project.settings.max_image_pixels)
    except (ImageError, OSError):
        skipped["undecodable"] += len(boxes)
        return []
    stem = str(PurePosixPath(im.name).with_suffix(""))
    outs: list[_Out] = []
    for i, (xyxy, cid) in enumerate(zip(boxes.xyxy, boxes.class_id, strict=True)):
        if int(cid) not in mapping:
            skipped["unknown_class"] += 1
            continue
        bw, bh = xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]
        if bw < min_size or bh < min_size:
            skipped["too_small"] += 1
            continue
        region = crop_region(xyxy, margin=margin, width=picture.width, height=picture.height)
        buf = io.BytesIO()
        picture.crop(region).save(buf, format="PNG", compress_level=1)  # lossless; level 1 is ~5x faster than 6
        data = buf.getvalue()
        meta: dict[str, Any] = {
            **_derived_meta(item, project, version),
            "parent_sha256": im.sha256, "parent_image_id": im.id, "group": im.sha256,
            "box_xyxy": [round(float(v), 4) for v in xyxy], "crop_xyxy": list(region), "box_index": i,
        }
        if boxes.track_id is not None:
            meta["track_id"] = int(boxes.track_id[i])
        outs.append(_Out(
            NewImage(sha256=sha256_bytes(data), width=region[2] - region[0], height=region[3] - region[1],
                     format="png", name=f"{stem}_box{i:04d}.png", source_uri=im.source_uri, video_id=im.video_id,
                     frame_index=im.frame_index, timestamp=im.timestamp, meta=meta),
            data, Label(mapping[int(cid)]),
        ))
    return outs


def _flush(new: Project, source: Project, batch: list[_Out], seen: set[int], counts: dict[str, Any],
           skipped: Counter[str]) -> None:
    for o in batch:
        if o.data is not None:
            new.blobs.put(o.data, o.image.sha256)
        elif not new.blobs.exists(o.image.sha256):
            new.blobs.put(source.blobs.read(o.image.sha256), o.image.sha256)
    onto = new.ontology()
    with new.transaction() as conn:
        ids = new.add_images([o.image for o in batch], conn=conn)
        for o, (image_id, _) in zip(batch, ids, strict=True):
            if image_id in seen:
                skipped["duplicate_crop"] += 1
                continue
            seen.add(image_id)
            counts["splits"][o.image.meta["split_hint"]] += 1
            if o.annotation is None:
                continue
            new.save_annotation(image_id, o.annotation, base_revision=None, author="derive", conn=conn, _onto=onto)
            counts["annotations"] += 1
            if isinstance(o.annotation, Label):
                counts["objects"] += 1
            elif isinstance(o.annotation, Tags):
                counts["objects"] += len(o.annotation.class_ids)
            elif isinstance(o.annotation, Boxes):
                counts["objects"] += len(o.annotation)


def derive_project(
    project: Project,
    version_name: str,
    *,
    to: str | DeriveTarget,
    out: str | Path,
    margin: float = 0.1,
    min_size: int = 4,
    progress: ProgressFn | None = None,
) -> DeriveReport:
    """Make a new project at ``out`` from version ``version_name`` of ``project`` by reducing its information.

    ``to``: ``"detection"`` (from segmentation), ``"tagging"`` (from detection, segmentation or classification) or
    ``"crops"`` (from detection or segmentation: a classification project of box crops). ``margin``: crops grow by
    this fraction of the box's width/height on each side, clipped to the image. ``min_size``: boxes narrower or
    shorter than this many pixels make no crop, and semantic-mask components that small are dropped as speckle.

    Crops are stored as PNG (lossless), labelled with the box's class, with meta ``parent_sha256``,
    ``parent_image_id``, ``box_xyxy`` (the original box), ``crop_xyxy`` (the region cut), ``group`` (= parent sha256)
    and ``split_hint``. Identical crops (same pixels) are stored once. Images of the derived project keep their
    source split in ``meta["split_hint"]``.

    The output directory must be new or empty; when the derivation fails, the directory it created is removed.
    """
    target = DeriveTarget(to)
    if not 0 <= margin <= 10:
        raise ConflictError(f"margin {margin} is out of range; give a fraction of the box size such as 0.1")
    info = get_version(project, version_name)
    if info.task not in _FROM[target]:
        allowed = ", ".join(sorted(t.value for t in _FROM[target]))
        raise ConflictError(
            f"cannot derive {target.value} from a {info.task.value} version; {target.value} comes from {allowed} "
            "data (information can only be reduced: segmentation -> detection -> tagging, detection -> crops)"
        )
    out = Path(out)
    _check_out(out)
    created_dir = not out.exists()
    items = version_items(project, version_name)
    new = Project.create(out, task=_OUT_TASK[target], name=out.resolve().name)
    skipped: Counter[str] = Counter()
    counts: dict[str, Any] = {"annotations": 0, "objects": 0, "splits": Counter()}
    try:
        mapping = _copy_classes(info.ontology, new)
        seen: set[int] = set()
        batch: list[_Out] = []
        for n, item in enumerate(items, 1):
            if target is DeriveTarget.CROPS:
                batch.extend(_crops(item, project, version_name, mapping, margin, min_size, skipped))
            else:
                batch.append(_one_to_one(item, project, version_name, target, mapping, min_size, skipped))
            if len(batch) >= _BATCH:
                _flush(new, project, batch, seen, counts, skipped)
                batch = []
            if progress:
                progress(n, len(items))
        if batch:
            _flush(new, project, batch, seen, counts, skipped)
        stats = new.stats()
    except BaseException:
        new.close()
        if created_dir:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    new.close()
    return DeriveReport(
        source_project=project.name, version=version_name, to=target, out=out, task=_OUT_TASK[target],
        images=int(stats["images"]), annotations=counts["annotations"], objects=counts["objects"],
        skipped={k: v for k, v in sorted(skipped.items()) if v}, splits=dict(counts["splits"]),
        classes=dict(stats["classes"]),
    )
