"""Label Studio JSON export: a list of tasks, each ``{"data": {"image": ...}, "annotations": [{"result": [...]}]}``.

Result types read: ``rectanglelabels`` / ``rectangle`` (``x, y, width, height`` in percent of ``original_width`` /
``original_height``; a rotated box becomes its axis-aligned envelope, reported), ``polygonlabels`` / ``polygon``
(``points`` in percent), ``brushlabels`` (Label Studio's brush RLE, decoded), ``choices`` (classification or tagging).
Other result types (keypoints, text, relations) are skipped with a problem.

Per task the newest annotation that was not cancelled is used (a ``ground_truth`` one wins); predictions are ignored.
Images: ``data.image`` may be an upload path (``/data/upload/1/5e1c2f0a-name.jpg``), a local-files URL
(``/data/local-files/?d=folder/name.jpg``) or any URL; the file is looked for by relative path, then by file name
(with and without the 8-hex upload prefix), next to the JSON file and under ``images/``.

``save`` writes ``out/result.json`` plus ``out/images/``, with ``data.image`` as ``/data/local-files/?d=images/<name>``
(the name percent-encoded, as Label Studio's local-files URLs are).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

from visionloop.core.annotations import RLE, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats._fields import (
    ITEM_ERRORS,
    FieldError,
    as_dict,
    as_float,
    as_int,
    as_list,
    check_canvas,
    describe,
    read_json_file,
)
from visionloop.formats._geometry import Shape, annotation_shapes, clip_shapes, shapes_to_annotation
from visionloop.formats._lsrle import decode_brush, encode_brush
from visionloop.formats._paths import (
    UnsafePathError,
    annotation_files,
    candidate_files,
    head,
    image_size,
    safe_relative_name,
)
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

NAME = "labelstudio"
TITLE = "Label Studio JSON"
TASKS = frozenset({Task.DETECTION, Task.SEGMENTATION, Task.CLASSIFICATION, Task.TAGGING})

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
_SKIP_QUIETLY = {"relation"}


def _looks_like(path: Path) -> bool:
    text = head(path)
    return text.startswith("[") and '"result"' in text and any(
        f'"{k}"' in text for k in ("annotations", "predictions", "completions")
    )


def detect(path: Path) -> float:
    """0.9 for a Label Studio JSON export (a list of tasks with results), or a folder holding one at its top."""
    return 0.9 if any(_looks_like(p) for p in candidate_files(Path(path), ".json", limit=20)) else 0.0


# ---------------------------------------------------------------------------------------------------------- reading


def _image_ref(data: dict[str, Any]) -> str | None:
    ref = data.get("image")
    if isinstance(ref, str) and ref:
        return ref
    for v in data.values():
        if isinstance(v, str) and is_image_file(Path(urlparse(v).path)):
            return v
    return None


def _candidates(ref: str) -> list[str]:
    """Relative paths to try for an image reference, best first; the last is the name used when none exists."""
    parsed = urlparse(ref)
    query = parse_qs(parsed.query)
    if "d" in query:
        rel = unquote(query["d"][0]).lstrip("/")
        out = [rel, Path(rel).name]
        if rel.startswith("images/"):
            out.append(rel[len("images/"):])
        return list(dict.fromkeys(out))
    path = unquote(parsed.path)
    name = Path(path).name
    out = []
    if not parsed.scheme and not path.startswith("/data/"):
        out.append(path.lstrip("/"))
    out.append(name)
    if _UPLOAD_PREFIX.match(name):
        out.append(_UPLOAD_PREFIX.sub("", name))
    return [c for c in dict.fromkeys(out) if c]


def _resolve(ref: str, base: Path) -> tuple[str, Path | None]:
    """(name, image file) for an image reference; candidates leading outside ``base`` are passed over."""
    cands = [c for c in _candidates(ref) if _is_safe(c)]
    for c in cands:
        found = find_image(base, c, search=("", "images"))
        if found is not None:
            images = base / "images"
            root = images if found.is_relative_to(images) else base
            return found.relative_to(root).as_posix(), found
    if not cands:
        raise UnsafePathError(ref, base, "no part of the image reference is a name inside the dataset")
    return cands[-1], None


def _is_safe(name: str) -> bool:
    try:
        safe_relative_name(name)
    except UnsafePathError:
        return False
    return True


def _pick_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    anns = [a for a in task.get("annotations") or task.get("completions") or [] if isinstance(a, dict)]
    anns = [a for a in anns if not a.get("was_cancelled")]
    if not anns:
        return None
    truth = [a for a in anns if a.get("ground_truth")]
    return (truth or anns)[-1]


def _label(value: dict[str, Any], key: str, ds: FormatDataset, where: str) -> int:
    names = as_list(value.get(key) or value.get("labels"), key)
    if not names:
        raise ValueError(f"{key} result without a label")
    if not isinstance(names[0], str | int) or not str(names[0]).strip():
        raise FieldError(key, "a list of label names", names)
    if len(names) > 1:
        ds.problems.append(Problem(path=where, reason=f"region with {len(names)} labels {names}; kept the first",
                                   action="repaired"))
    return ds.class_index(str(names[0]))


def _pct_of(value: Any, total: float, field: str) -> float:
    """Pixels from a percentage of ``total``."""
    return as_float(value, field, lo=-1e4, hi=1e4) * total / 100


def _rect(value: dict[str, Any], w: float, h: float, ds: FormatDataset, where: str) -> tuple[float, ...]:
    x, y = _pct_of(value.get("x"), w, "x"), _pct_of(value.get("y"), h, "y")
    bw, bh = _pct_of(value.get("width"), w, "width"), _pct_of(value.get("height"), h, "height")
    angle = as_float(value.get("rotation") or 0, "rotation", lo=-3600, hi=3600)
    if abs(angle) < 1e-9:
        return (x, y, x + bw, y + bh)
    a = math.radians(angle)  # Label Studio rotates clockwise around the top-left corner
    xs = [x + dx * math.cos(a) - dy * math.sin(a) for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh))]
    ys = [y + dx * math.sin(a) + dy * math.cos(a) for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh))]
    ds.problems.append(Problem(path=where, reason=f"box rotated by {angle} degrees; kept its axis-aligned envelope",
                               action="repaired"))
    return (min(xs), min(ys), max(xs), max(ys))


def _pair(point: Any) -> tuple[Any, Any]:
    if not isinstance(point, list) or len(point) != 2:
        raise FieldError("points", "a list of [x, y] pairs", point)
    return point[0], point[1]


def _task_sample(task: dict[str, Any], k: int, src: Path, base: Path, ds: FormatDataset,
                 pending: list[tuple[Sample, list[Shape], list[int]]]) -> None:
    where = f"{src.name}:task {describe(task.get('id', k))}"
    data = task.get("data")
    ref = _image_ref(data) if isinstance(data, dict) else None
    if ref is None:
        ds.problems.append(Problem(path=where, reason="task has no data.image"))
        return
    name, image_path = _resolve(ref, base)
    sample = Sample(name=name, image_path=image_path, meta={"labelstudio_id": task.get("id"), "source_uri": ref})
    if image_path is None:
        ds.problems.append(Problem(path=where, reason=f"image {ref!r} not found next to {src.name} or in images/",
                                   action="kept without image"))
    shapes: list[Shape] = []
    tags: list[int] = []
    ann = _pick_annotation(task)
    if ann is None:
        pending.append((sample, shapes, tags))
        sample.meta["unannotated"] = True
        return
    for r_i, result in enumerate(as_list(ann.get("result"), "result")):
        kind = str(result.get("type", "")).lower()[:64] if isinstance(result, dict) else "?"
        try:
            result = as_dict(result, "result")
            value = as_dict(result.get("value"), "value")
            rw, rh = result.get("original_width"), result.get("original_height")
            if rw and rh:
                sample.width, sample.height = as_int(rw, "original_width", lo=1), as_int(rh, "original_height", lo=1)
            w, h = sample.width, sample.height
            if kind in ("choices", "taxonomy"):
                for c in as_list(value.get(kind), kind):
                    if isinstance(c, list) and all(isinstance(v, str) for v in c):
                        c = "/".join(c)
                    if not isinstance(c, str) or not c.strip():
                        raise FieldError(kind, "label names", c)
                    tags.append(ds.class_index(c[:256]))
                continue
            if kind in _SKIP_QUIETLY:
                continue
            if kind not in ("rectanglelabels", "rectangle", "polygonlabels", "polygon", "brushlabels", "brush"):
                ds.problems.append(Problem(path=where, reason=f"result {r_i} of type {kind!r} is not read; visionloop "
                                           "reads rectangles, polygons, brushes and choices"))
                continue
            if not w or not h:
                w, h = image_size(image_path) or (0, 0)
                sample.width, sample.height = (w or None), (h or None)
                if not w:
                    raise ValueError("no original_width/original_height and no image to measure")
            if kind.startswith("rectangle"):
                cid = _label(value, "rectanglelabels", ds, where) if kind == "rectanglelabels" else ds.class_index(
                    "object")
                shapes.append(Shape(class_id=cid, xyxy=_rect(value, w, h, ds, where)))  # type: ignore[arg-type]
            elif kind.startswith("polygon"):
                cid = _label(value, "polygonlabels", ds, where) if kind == "polygonlabels" else ds.class_index(
                    "object")
                ring = [v for x, y in (_pair(p) for p in as_list(value.get("points"), "points"))
                        for v in (_pct_of(x, w, "point x"), _pct_of(y, h, "point y"))]
                if len(ring) < 6:
                    raise ValueError(f"polygon with {len(ring) // 2} points, needs >= 3")
                shapes.append(Shape(class_id=cid, rings=[ring]))
            else:
                cid = _label(value, "brushlabels", ds, where) if kind == "brushlabels" else ds.class_index("object")
                if value.get("format", "rle") != "rle" or not value.get("rle"):
                    raise ValueError(f"brush in format {describe(value.get('format'))}; only 'rle' is read")
                check_canvas(int(w), int(h), "original_width x original_height")
                rle = [as_int(v, "brush rle", hi=255) for v in as_list(value.get("rle"), "rle")]
                shapes.append(Shape(class_id=cid, rle=RLE.encode(decode_brush(rle, int(h), int(w)))))
            if result.get("score") is not None:
                shapes[-1].attributes["score"] = as_float(result["score"], "score")
        except ITEM_ERRORS as e:
            ds.problems.append(Problem(path=where, reason=f"result {r_i} ({kind}): {e}"))
    pending.append((sample, clip_shapes(shapes, sample.width, sample.height, ds, where), tags))


def load(path: Path) -> FormatDataset:
    """Read a Label Studio JSON export (a file, or every export at the top level of a folder)."""
    path = Path(path)
    files = annotation_files(path, ".json", _looks_like, fmt=NAME, reason="expected a Label Studio JSON export: "
                             "a list of tasks with 'data' and 'annotations' (Export > JSON in Label Studio)")
    base = path if path.is_dir() else path.parent
    ds = FormatDataset(task=Task.DETECTION)
    pending: list[tuple[Sample, list[Shape], list[int]]] = []
    read = 0
    for src in files:
        try:
            tasks = read_json_file(src)
        except (OSError, ValueError) as e:
            ds.problems.append(Problem(path=str(src), reason=f"not valid JSON: {e}"))
            continue
        if not isinstance(tasks, list):
            ds.problems.append(Problem(path=str(src), reason="top level is not a list of tasks"))
            continue
        read += 1
        for k, task in enumerate(tasks):
            if not isinstance(task, dict):
                ds.problems.append(Problem(path=f"{src.name}:task {k}", reason="task is not an object"))
                continue
            try:
                _task_sample(task, k, src, base, ds, pending)
            except ITEM_ERRORS as e:
                ds.problems.append(Problem(path=f"{src.name}:task {k}", reason=f"task skipped: {e}"))
    if not read:
        raise FormatError(path, NAME, "no Label Studio export could be read: "
                          + "; ".join(p.reason for p in ds.problems[:3]))
    shapes_all = [s for _, shapes, _ in pending for s in shapes]
    if any(not s.is_rectangle for s in shapes_all):
        ds.task = Task.SEGMENTATION
    elif shapes_all or not any(t for _, _, t in pending):
        ds.task = Task.DETECTION
    else:
        ds.task = Task.TAGGING if any(len(set(t)) > 1 for _, _, t in pending) else Task.CLASSIFICATION
    for sample, shapes, tags in pending:
        if sample.meta.pop("unannotated", False):
            ds.samples.append(sample)
            continue
        if ds.task in (Task.DETECTION, Task.SEGMENTATION):
            sample.annotation = shapes_to_annotation(shapes, segmentation=ds.task == Task.SEGMENTATION)
            if tags:
                sample.meta["tags"] = sorted({ds.classes[t] for t in tags})
        elif ds.task == Task.TAGGING:
            sample.annotation = Tags(frozenset(tags))
        elif tags:
            sample.annotation = Label(tags[0])
        ds.samples.append(sample)
    return ds


# ---------------------------------------------------------------------------------------------------------- writing


def _rid() -> str:
    return uuid.uuid4().hex[:10]


def _pct(v: float, total: float) -> float:
    return round(v * 100.0 / total, 6)


def _results(sample: Sample, classes: list[str]) -> list[dict[str, Any]]:
    ann = sample.annotation
    size = (sample.width, sample.height) if sample.width and sample.height else image_size(sample.image_path)
    if size is None and isinstance(ann, SemanticMask):
        size = (ann.mask.shape[1], ann.mask.shape[0])
    if size is None and isinstance(ann, Instances) and ann.segmentations and isinstance(ann.segmentations[0], RLE):
        size = (ann.segmentations[0].size[1], ann.segmentations[0].size[0])
    out: list[dict[str, Any]] = []
    choices = []
    if isinstance(ann, Label):
        choices = [classes[ann.class_id]]
    elif isinstance(ann, Tags):
        choices = [classes[c] for c in sorted(ann.class_ids)]
    choices += list(sample.meta.get("tags", []))
    if choices:
        out.append({"id": _rid(), "type": "choices", "from_name": "choice", "to_name": "image", "origin": "manual",
                    "value": {"choices": choices}})
    if ann is None or isinstance(ann, Label | Tags):
        return out
    if size is None:
        raise FormatError(sample.name, NAME, "Label Studio stores regions in percent of the image size; the image "
                          "and its size are unknown")
    w, h = size
    common = {"to_name": "image", "original_width": w, "original_height": h, "image_rotation": 0, "origin": "manual"}
    if isinstance(ann, SemanticMask):
        shapes = [Shape(class_id=c, rle=RLE.encode(ann.mask == c)) for c in ann.class_ids()]
    else:
        shapes = annotation_shapes(ann)
    for s in shapes:
        label = classes[s.class_id]
        extra = {"score": s.attributes["score"]} if "score" in s.attributes else {}
        if s.rle is not None:
            out.append({"id": _rid(), "type": "brushlabels", "from_name": "brush", **common, **extra,
                        "value": {"format": "rle", "rle": encode_brush(s.rle.decode()), "brushlabels": [label]}})
        elif s.rings is not None:
            for ring in s.rings:
                pts = [[_pct(ring[i], w), _pct(ring[i + 1], h)] for i in range(0, len(ring), 2)]
                out.append({"id": _rid(), "type": "polygonlabels", "from_name": "polygon", **common, **extra,
                            "value": {"points": pts, "closed": True, "polygonlabels": [label]}})
        elif s.xyxy is not None:
            x1, y1, x2, y2 = s.xyxy
            out.append({"id": _rid(), "type": "rectanglelabels", "from_name": "label", **common, **extra,
                        "value": {"x": _pct(x1, w), "y": _pct(y1, h), "width": _pct(x2 - x1, w),
                                  "height": _pct(y2 - y1, h), "rotation": 0, "rectanglelabels": [label]}})
    return out


def save(dataset: FormatDataset, out: Path) -> None:
    """Write ``out/result.json`` (Label Studio JSON export) and copy the images to ``out/images/``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = safe_for_export(dataset, per_subset=False)  # names from data files made safe paths under images/
    tasks = []
    for i, sample in enumerate(dataset.samples, start=1):
        task: dict[str, Any] = {"id": i, "data": {"image": f"/data/local-files/?d={quote(f'images/{sample.name}')}"},
                                "annotations": [], "predictions": []}
        if sample.annotation is not None or sample.meta.get("tags"):
            task["annotations"].append({"id": i, "result": _results(sample, dataset.classes), "was_cancelled": False,
                                        "ground_truth": False, "task": i})
        tasks.append(task)
        copy_image(sample, out / "images")
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    tmp.replace(out / "result.json")
