"""Annotation types, one per kind of label, validated on construction.

Class ids are the project's stable integer ids (or, inside a format's dataset, indexes into its own class list).
Coordinates are pixels in the image after EXIF orientation; boxes are ``xyxy`` (x1, y1, x2, y2) with x2 >= x1.
Every type converts to and from a JSON-able *payload* (``annotation_to_payload`` / ``annotation_from_payload``),
which is what the store keeps in each revision.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import numpy as np

from visionloop.core.errors import AnnotationValidationError

__all__ = [
    "RLE",
    "Annotation",
    "Boxes",
    "Instances",
    "Label",
    "Polygons",
    "SemanticMask",
    "Tags",
    "annotation_class_counts",
    "boxes_of",
    "annotation_from_payload",
    "annotation_to_payload",
    "validate_for_image",
]


MAX_CLASS_ID = 2**31 - 1
"""Largest class id an annotation may name (ids are database integers)."""
MAX_SEMANTIC_PIXELS = 1 << 28
"""Largest semantic mask a payload may describe (before it is allocated)."""


def _rle_runs(counts: str, what: str = "RLE.counts") -> np.ndarray:
    """The run lengths (int64) a compressed COCO RLE string stands for, without decoding the mask.

    Follows pycocotools' string form (``rleFrString``): 6-bit characters from ``'0'``, 5 bits of value each with a
    continuation bit and a sign bit, every run after the third stored as a difference to the run two before.
    Raises :class:`AnnotationValidationError` for characters outside that alphabet, a truncated value or a value
    over 60 bits, so a garbage string never reaches pycocotools' decoder (which does not check it).
    """
    try:
        raw = counts.encode("ascii")
    except UnicodeEncodeError:
        raise AnnotationValidationError(what, expected="ASCII characters '0'..'o'", actual="non-ASCII text") from None
    b = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if b.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ((b < 0) | (b > 63)).any():
        raise AnnotationValidationError(what, expected="characters '0'..'o' (COCO compressed RLE)",
                                        actual=repr(chr(int(b[(b < 0) | (b > 63)][0]) + 48)))
    more = (b & 0x20) != 0
    if more[-1]:
        raise AnnotationValidationError(what, expected="complete run values", actual="a truncated last value")
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    value_of = np.repeat(np.arange(len(ends)), ends - starts + 1)
    pos = np.arange(b.size) - starts[value_of]
    if pos.max() > 11:
        raise AnnotationValidationError(what, expected="run lengths under 2**60", actual="a longer value")
    x = np.add.reduceat((b & 0x1F) << (5 * pos), starts)
    negative = (b[ends] & 0x10) != 0
    x[negative] |= np.left_shift(np.int64(-1), 5 * (pos[ends][negative] + 1))
    runs = x.copy()
    runs[1::2] = np.cumsum(x[1::2])
    runs[2::2] = np.cumsum(x[2::2])
    return runs


def _check_rle_counts(size: tuple[int, int], counts: str) -> None:
    h, w = size
    runs = _rle_runs(counts)
    if (runs < 0).any():
        raise AnnotationValidationError("RLE.counts", expected="run lengths >= 0", actual=int(runs.min()))
    if runs.size and int(runs.max()) > h * w or int(runs.sum()) != h * w:
        raise AnnotationValidationError(
            "RLE.counts", expected=f"runs that add up to the {h}x{w} = {h * w:,} pixels of RLE.size",
            actual=f"{int(runs.sum()) if runs.size and int(runs.max()) <= h * w else 'more'} pixels",
        )


def _check_class_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= int(value) <= MAX_CLASS_ID:
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:30] + "..."
        raise AnnotationValidationError(what, expected=f"a class id (int 0..{MAX_CLASS_ID})", actual=shown)
    return int(value)


@dataclass(frozen=True)
class Label:
    """Classification: exactly one class for the whole image."""

    class_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_id", _check_class_id(self.class_id, "Label.class_id"))


@dataclass(frozen=True)
class Tags:
    """Tagging: the set of classes present in the image (empty = none of them)."""

    class_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        ids = frozenset(_check_class_id(c, "Tags.class_ids[]") for c in self.class_ids)
        object.__setattr__(self, "class_ids", ids)


@dataclass(eq=False)
class Boxes:
    """Detection: N boxes as aligned arrays.

    Shapes: ``xyxy`` (N, 4) float64 pixels; ``class_id`` (N,) int64; ``score`` (N,) float64 in [0, 1] or None for
    ground truth; ``track_id`` (N,) int64 or None (video tracks); ``attributes`` one dict per box.
    """

    xyxy: np.ndarray
    class_id: np.ndarray
    score: np.ndarray | None = None
    track_id: np.ndarray | None = None
    attributes: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        try:
            xyxy = np.asarray(self.xyxy, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as e:
            raise AnnotationValidationError("Boxes.xyxy", expected="(N, 4) numbers", actual=str(e)[:80]) from None
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise AnnotationValidationError("Boxes.xyxy shape", expected="(N, 4)", actual=xyxy.shape)
        n = len(xyxy)
        if not np.isfinite(xyxy).all():
            raise AnnotationValidationError("Boxes.xyxy", expected="finite numbers", actual="NaN or inf")
        if n and ((xyxy[:, 2] < xyxy[:, 0]).any() or (xyxy[:, 3] < xyxy[:, 1]).any()):
            bad = int(np.flatnonzero((xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1]))[0])
            raise AnnotationValidationError(
                f"Boxes.xyxy[{bad}]", expected="x2 >= x1 and y2 >= y1 (xyxy order)", actual=xyxy[bad].tolist(),
                hint="if your boxes are x, y, width, height convert them with x2 = x + w, y2 = y + h",
            )
        self.xyxy = xyxy
        self.class_id = self._aligned("class_id", self.class_id, np.int64, n)
        if n and ((self.class_id < 0) | (self.class_id > MAX_CLASS_ID)).any():
            bad = self.class_id[(self.class_id < 0) | (self.class_id > MAX_CLASS_ID)][0]
            raise AnnotationValidationError("Boxes.class_id", expected=f"ids 0..{MAX_CLASS_ID}", actual=int(bad))
        if self.score is not None:
            self.score = self._aligned("score", self.score, np.float64, n)
            if n and ((self.score < 0) | (self.score > 1)).any():
                raise AnnotationValidationError(
                    "Boxes.score", expected="values in [0, 1]", actual=(self.score.min(), self.score.max())
                )
        if self.track_id is not None:
            self.track_id = self._aligned("track_id", self.track_id, np.int64, n)
        if self.attributes is not None and len(self.attributes) != n:
            raise AnnotationValidationError("Boxes.attributes length", expected=n, actual=len(self.attributes))

    @staticmethod
    def _aligned(name: str, values: Any, dtype: Any, n: int) -> np.ndarray:
        try:
            arr = np.asarray(values, dtype=dtype).reshape(-1)
        except OverflowError:
            raise AnnotationValidationError(f"Boxes.{name}", expected=f"{n} integers 0..{MAX_CLASS_ID}",
                                            actual="an integer too large") from None
        except (TypeError, ValueError) as e:
            raise AnnotationValidationError(f"Boxes.{name}", expected=f"{n} numbers", actual=str(e)[:80]) from None
        if dtype is np.float64 and not np.isfinite(arr).all():
            raise AnnotationValidationError(f"Boxes.{name}", expected="finite numbers", actual="NaN or inf")
        if arr.shape != (n,):
            raise AnnotationValidationError(f"Boxes.{name} shape", expected=(n,), actual=arr.shape)
        return arr

    @classmethod
    def empty(cls) -> Boxes:
        return cls(np.zeros((0, 4)), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Boxes):
            return NotImplemented
        return annotation_to_payload(self) == annotation_to_payload(other)

    def take(self, keep: Any) -> Boxes:
        """The boxes at the indexes ``keep`` (a list of ints or a boolean mask), every aligned field with them."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
        return Boxes(self.xyxy[idx], self.class_id[idx], None if self.score is None else self.score[idx],
                     None if self.track_id is None else self.track_id[idx],
                     None if self.attributes is None else [self.attributes[int(i)] for i in idx])

    def clip(self, width: int, height: int) -> tuple[Boxes, list[int]]:
        """Clip boxes to the image; returns the clipped boxes and the indexes of boxes that were changed."""
        clipped = self.xyxy.copy()
        clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
        clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
        changed = np.flatnonzero((clipped != self.xyxy).any(axis=1)).tolist()
        return Boxes(clipped, self.class_id, self.score, self.track_id, self.attributes), changed

    @property
    def area(self) -> np.ndarray:
        """(N,) box areas in square pixels."""
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])


Polygons: TypeAlias = list[list[float]]
"""One instance's outline: a list of rings, each a flat list [x1, y1, x2, y2, ...] of pixels (>= 3 points)."""


@dataclass(frozen=True)
class RLE:
    """COCO run-length encoding of one binary mask; ``counts`` is the compressed string form, ``size`` is (h, w)."""

    size: tuple[int, int]
    counts: str

    def __post_init__(self) -> None:
        size = tuple(self.size) if isinstance(self.size, list | tuple) else ()
        if len(size) != 2 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in size) \
                or min(size) <= 0 or max(size) > 1 << 20:
            raise AnnotationValidationError("RLE.size", expected="(height, width), integers 1..2**20",
                                            actual=str(self.size)[:80])
        object.__setattr__(self, "size", (int(size[0]), int(size[1])))
        if not isinstance(self.counts, str):
            raise AnnotationValidationError("RLE.counts", expected="compressed str", actual=type(self.counts))
        _check_rle_counts(self.size, self.counts)

    @classmethod
    def encode(cls, mask: np.ndarray) -> RLE:
        """Encode a (H, W) boolean/0-1 mask."""
        from pycocotools import mask as mask_utils

        rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
        return cls(size=(int(rle["size"][0]), int(rle["size"][1])), counts=rle["counts"].decode("ascii"))

    def decode(self) -> np.ndarray:
        """(H, W) bool mask."""
        from pycocotools import mask as mask_utils

        return mask_utils.decode(self.to_coco()).astype(bool)

    def to_coco(self) -> dict[str, Any]:
        return {"size": list(self.size), "counts": self.counts.encode("ascii")}

    def area(self) -> int:
        from pycocotools import mask as mask_utils

        return int(mask_utils.area(self.to_coco()))


@dataclass(eq=False)
class Instances:
    """Instance segmentation: boxes plus one outline per instance (polygons or RLE).

    ``boxes`` holds the class ids (and scores for predictions); ``segmentations[i]`` outlines ``boxes[i]``.
    """

    boxes: Boxes
    segmentations: list[Polygons | RLE] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.segmentations) != len(self.boxes):
            raise AnnotationValidationError(
                "Instances.segmentations length", expected=len(self.boxes), actual=len(self.segmentations)
            )
        for i, seg in enumerate(self.segmentations):
            if isinstance(seg, RLE):
                continue
            if not isinstance(seg, list) or not seg:
                raise AnnotationValidationError(
                    f"Instances.segmentations[{i}]", expected="RLE or a non-empty list of rings", actual=type(seg)
                )
            for ring in seg:
                if not isinstance(ring, list | tuple | np.ndarray) or not all(
                        isinstance(v, int | float | np.number) and not isinstance(v, bool) and math.isfinite(v)
                        for v in ring):
                    raise AnnotationValidationError(
                        f"Instances.segmentations[{i}] ring", expected="a flat list of finite numbers",
                        actual=str(ring)[:80],
                    )
                if len(ring) < 6 or len(ring) % 2:
                    raise AnnotationValidationError(
                        f"Instances.segmentations[{i}] ring",
                        expected="a flat [x1, y1, x2, y2, ...] list of >= 3 points",
                        actual=f"{len(ring)} numbers",
                    )

    def __len__(self) -> int:
        return len(self.boxes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instances):
            return NotImplemented
        return annotation_to_payload(self) == annotation_to_payload(other)

    def mask(self, i: int, height: int, width: int) -> np.ndarray:
        """(H, W) bool mask of instance ``i``."""
        seg = self.segmentations[i]
        if isinstance(seg, RLE):
            return seg.decode()
        from pycocotools import mask as mask_utils

        rles = mask_utils.frPyObjects([list(map(float, r)) for r in seg], height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


@dataclass(eq=False)
class SemanticMask:
    """Semantic segmentation: a (H, W) map of class ids; ``ignore_index`` pixels (default 255) are unlabelled.

    Class id 0 is whatever the ontology calls it (usually background).
    """

    mask: np.ndarray
    ignore_index: int = 255

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.ndim != 2:
            raise AnnotationValidationError("SemanticMask.mask", expected="(H, W) array", actual=m.shape)
        if not np.issubdtype(m.dtype, np.integer) and m.dtype != bool:
            raise AnnotationValidationError("SemanticMask.mask dtype", expected="integers", actual=m.dtype)
        self.mask = m.astype(np.int32)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemanticMask):
            return NotImplemented
        return self.ignore_index == other.ignore_index and np.array_equal(self.mask, other.mask)

    def class_ids(self) -> list[int]:
        return [int(c) for c in np.unique(self.mask) if c != self.ignore_index]


Annotation: TypeAlias = Label | Tags | Boxes | Instances | SemanticMask


def _round(values: np.ndarray) -> list[Any]:
    """Coordinates to 1/10000 pixel, as plain floats (JSON payloads compare equal after a round trip)."""
    return np.round(np.asarray(values, dtype=np.float64), 4).tolist()


def _boxes_payload(b: Boxes) -> dict[str, Any]:
    out: dict[str, Any] = {"xyxy": _round(b.xyxy), "class_id": b.class_id.tolist()}
    if b.score is not None:
        out["score"] = _round(b.score)
    if b.track_id is not None:
        out["track_id"] = b.track_id.tolist()
    if b.attributes is not None and any(b.attributes):
        out["attributes"] = b.attributes
    return out


def annotation_to_payload(ann: Annotation) -> dict[str, Any]:
    """JSON-able dict with a ``type`` key; inverse of :func:`annotation_from_payload`."""
    if isinstance(ann, Label):
        return {"type": "label", "class_id": ann.class_id}
    if isinstance(ann, Tags):
        return {"type": "tags", "class_ids": sorted(ann.class_ids)}
    if isinstance(ann, Boxes):
        return {"type": "boxes", **_boxes_payload(ann)}
    if isinstance(ann, Instances):
        segs = [
            {"rle": {"size": list(s.size), "counts": s.counts}}
            if isinstance(s, RLE)
            else {"polygons": [_round(np.asarray(r)) for r in s]}
            for s in ann.segmentations
        ]
        return {"type": "instances", **_boxes_payload(ann.boxes), "segmentations": segs}
    if isinstance(ann, SemanticMask):
        h, w = ann.mask.shape
        per_class = {str(c): RLE.encode(ann.mask == c).counts for c in np.unique(ann.mask).tolist()}
        return {"type": "semantic", "size": [h, w], "ignore_index": ann.ignore_index, "classes": per_class}
    raise AnnotationValidationError("annotation", expected="Label, Tags, Boxes, Instances or SemanticMask",
                                    actual=type(ann).__name__)


def _boxes_from(p: dict[str, Any]) -> Boxes:
    xyxy = np.asarray(p.get("xyxy", []), dtype=np.float64).reshape(-1, 4)
    return Boxes(xyxy, p.get("class_id", []), p.get("score"), p.get("track_id"), p.get("attributes"))


def annotation_from_payload(payload: dict[str, Any]) -> Annotation:
    """Build the typed annotation from a stored payload; a malformed one raises :class:`AnnotationValidationError`."""
    if not isinstance(payload, dict):
        raise AnnotationValidationError("annotation payload", expected="an object with a 'type'",
                                        actual=type(payload).__name__)
    try:
        return _from_payload(payload)
    except AnnotationValidationError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError) as e:
        raise _payload_error(e) from None


def _from_payload(payload: dict[str, Any]) -> Annotation:
    kind = payload.get("type")
    if kind == "label":
        return Label(payload["class_id"])
    if kind == "tags":
        return Tags(frozenset(payload["class_ids"]))
    if kind == "boxes":
        return _boxes_from(payload)
    if kind == "instances":
        segs: list[Polygons | RLE] = [
            RLE(tuple(s["rle"]["size"]), s["rle"]["counts"]) if "rle" in s else s["polygons"]
            for s in payload["segmentations"]
        ]
        return Instances(_boxes_from(payload), segs)
    if kind == "semantic":
        h, w = payload["size"]
        if not (isinstance(h, int) and isinstance(w, int)) or h * w > MAX_SEMANTIC_PIXELS:
            raise AnnotationValidationError("semantic mask size", expected=f"[height, width] of at most "
                                            f"{MAX_SEMANTIC_PIXELS:,} pixels", actual=str(payload["size"])[:60])
        rles = {int(cid): RLE((h, w), counts) for cid, counts in payload["classes"].items()}  # checked before alloc
        mask = np.full((h, w), payload.get("ignore_index", 255), dtype=np.int32)
        for cid, rle in rles.items():
            mask[rle.decode()] = cid
        return SemanticMask(mask, payload.get("ignore_index", 255))
    raise AnnotationValidationError(
        "payload type", expected="label, tags, boxes, instances or semantic", actual=repr(kind)[:40]
    )


def boxes_of(ann: Boxes | Instances | None) -> Boxes:
    """The boxes of a detection or instance annotation (an instance's box carries its class and score)."""
    if ann is None:
        return Boxes.empty()
    return ann.boxes if isinstance(ann, Instances) else ann


def annotation_class_counts(ann: Annotation) -> Counter[int]:
    """Instances per class id: 1 per Label/Tag, 1 per box or instance, 1 per class present in a semantic mask."""
    if isinstance(ann, Label):
        return Counter([ann.class_id])
    if isinstance(ann, Tags):
        return Counter(ann.class_ids)
    if isinstance(ann, Boxes):
        return Counter(ann.class_id.tolist())
    if isinstance(ann, Instances):
        return Counter(ann.boxes.class_id.tolist())
    return Counter(ann.class_ids())


def _payload_error(e: Exception) -> AnnotationValidationError:
    return AnnotationValidationError(
        "annotation payload", expected="a payload as annotation_to_payload writes it", actual=f"{type(e).__name__}: {e}"[:200],
    )


def validate_for_image(
    ann: Annotation, width: int, height: int, *, clip_outside: bool, tolerance: float | None = None,
) -> tuple[Annotation, list[str]]:
    """Check ``ann`` against its ``width`` x ``height`` image; returns the annotation fitted to it and notes.

    The one check that import and every save run. Masks must have the image's size (an RLE's ``size`` is
    ``(height, width)``, a semantic mask ``(H, W)``). Boxes and outline points sticking out by at most
    ``tolerance`` pixels (default: 1 px or 0.5 % of the side, whichever is more) are clipped silently; beyond that
    they are clipped with a note when ``clip_outside`` (import: the file says so, keep what is inside) and refused
    otherwise (a save: the client sent coordinates that are not on the image), as is a box entirely outside.
    Raises :class:`AnnotationValidationError` saying what to fix.
    """
    if width <= 0 or height <= 0:
        raise AnnotationValidationError("image size", expected="width and height > 0", actual=(width, height))
    if isinstance(ann, Label | Tags):
        return ann, []
    if isinstance(ann, SemanticMask):
        if ann.mask.shape != (height, width):
            raise AnnotationValidationError("semantic mask shape", expected=(height, width), actual=ann.mask.shape,
                                            hint="a semantic mask covers the whole image: (height, width)")
        return ann, []
    tol = tolerance if tolerance is not None else max(1.0, 0.005 * max(width, height))
    boxes = ann.boxes if isinstance(ann, Instances) else ann
    if not isinstance(boxes, Boxes):
        raise AnnotationValidationError("annotation", expected="Label, Tags, Boxes, Instances or SemanticMask",
                                        actual=type(ann).__name__)
    notes: list[str] = []
    xyxy = boxes.xyxy
    if len(xyxy):
        limit = np.array([width, height, width, height], dtype=np.float64)
        clipped = np.clip(xyxy, 0.0, limit)
        excess = np.abs(clipped - xyxy).max(axis=1)
        outside = ((clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])) & (
            (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1]))
        far = np.flatnonzero((excess > tol) & ~outside)
        if not clip_outside and (len(far) or outside.any()):
            i = int(np.flatnonzero((excess > tol) | outside)[0])
            raise AnnotationValidationError(
                f"box {i}", expected=f"inside the {width}x{height} image (xyxy pixels, at most {tol:g} px outside)",
                actual=[float(f"{v:.6g}") for v in xyxy[i]],
                hint="clip the box to the image or delete it",
            )
        if len(far):
            notes.append(f"{len(far)} box(es) outside the {width}x{height} image clipped to it: "
                         + "; ".join(str([round(float(v), 1) for v in xyxy[i]]) for i in far[:5]))
        if outside.any():
            notes.append(f"{int(outside.sum())} box(es) entirely outside the {width}x{height} image dropped: "
                         + "; ".join(str([round(float(v), 1) for v in xyxy[i]]) for i in np.flatnonzero(outside)[:5]))
        if (excess > 0).any():
            boxes = replace(boxes, xyxy=clipped)
        if outside.any():
            keep = np.flatnonzero(~outside)
            boxes = boxes.take(keep)
            if isinstance(ann, Instances):
                ann = Instances(boxes, [ann.segmentations[i] for i in keep])
    if isinstance(ann, Boxes):
        return boxes, notes
    segs: list[Polygons | RLE] = []
    for i, seg in enumerate(ann.segmentations):
        if isinstance(seg, RLE):
            if seg.size != (height, width):
                raise AnnotationValidationError(
                    f"instance {i} RLE size", expected=[height, width], actual=list(seg.size),
                    hint="an RLE mask has the image's size, [height, width]",
                )
            segs.append(seg)
            continue
        rings = []
        for ring in seg:
            pts = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
            inside = np.clip(pts, 0.0, [width, height])
            over = float(np.abs(inside - pts).max()) if len(pts) else 0.0
            if over > tol and not clip_outside:
                raise AnnotationValidationError(
                    f"instance {i} outline", expected=f"points inside the {width}x{height} image "
                    f"(at most {tol:g} px outside)", actual=f"a point {over:.6g} px outside",
                )
            rings.append(inside.reshape(-1).tolist() if over > 0 else list(ring))
            if over > tol:
                notes.append(f"instance {i}: outline points outside the image clipped to it")
        segs.append(rings)
    return Instances(boxes, segs), notes
