"""Byte-identical images that one import gives two different annotations (two file names, two annotation files).

A byte-identical image that a source lists in two subsets (``train/1.jpg`` and ``val/1.jpg``) is stored once with
every subset in ``meta["subsets"]``, and reported as a :class:`SubsetConflict`: a version made with the source's
splits reports it as a leak between them.

Neither annotation is lost silently: each such pair is a :class:`Conflict` in the import report (both file names,
both annotations) and a problem, and ``on_conflict`` says what is stored:

- ``first`` (the default): the first file's annotation, as if the copy were not there. It is the safe choice: nothing
  is invented or doubled, and the report holds the other annotation, so a re-run with ``merge`` or ``last`` applies
  it (re-running an import adds only what changed);
- ``last``: the last file's annotation (a new revision on top of the first, both kept in the history);
- ``merge``: the union (boxes and instances of both, exact repeats once; tags of both). Two different whole-image
  labels or semantic masks cannot be merged: the first is kept and the conflict says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from visionloop.core.annotations import (
    Annotation,
    Boxes,
    Instances,
    Tags,
    annotation_class_counts,
    annotation_to_payload,
)
from visionloop.core.errors import AnnotationValidationError
from visionloop.core.ontology import Ontology

__all__ = ["Conflict", "OnConflict", "SubsetConflict", "describe", "merge_annotations"]


class OnConflict(StrEnum):
    """What an import stores for a byte-identical image that two annotation files annotate differently."""

    FIRST = "first"
    LAST = "last"
    MERGE = "merge"

    @classmethod
    def parse(cls, value: OnConflict | str) -> OnConflict:
        """``value`` as a policy; :class:`AnnotationValidationError` names the choices for anything else."""
        try:
            return cls(value)
        except ValueError:
            raise AnnotationValidationError("on_conflict", expected="first, last or merge",
                                            actual=repr(value)[:40]) from None


@dataclass
class Conflict:
    """One image (``sha256``) annotated differently under two names; ``kept`` is what was stored."""

    sha256: str
    first_name: str
    first: dict[str, Any]
    second_name: str
    second: dict[str, Any]
    kept: str

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "kept": self.kept,
                "first": {"name": self.first_name, "annotation": self.first},
                "second": {"name": self.second_name, "annotation": self.second}}


@dataclass
class SubsetConflict:
    """One image (``sha256``) that the source lists in several subsets; ``names``: the file name under each of
    ``subsets`` (the stored name for a subset an earlier import recorded)."""

    sha256: str
    subsets: list[str]
    names: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "subsets": self.subsets, "names": self.names}


def _concat(a: Boxes, b: Boxes) -> Boxes:
    def both(x: np.ndarray | None, y: np.ndarray | None, n: int, m: int) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x[:n], y[:m]])

    attrs = None if a.attributes is None and b.attributes is None else \
        [*(a.attributes or [{}] * len(a)), *(b.attributes or [{}] * len(b))]
    return Boxes(np.concatenate([a.xyxy, b.xyxy]), np.concatenate([a.class_id, b.class_id]),
                 both(a.score, b.score, len(a), len(b)), both(a.track_id, b.track_id, len(a), len(b)), attrs)


def merge_annotations(first: Annotation, second: Annotation) -> Annotation | None:
    """The union of two annotations of one image, or None when they cannot be merged (labels, semantic masks).

    Boxes/instances of ``second`` that repeat one of ``first`` exactly (same class, same coordinates, same outline)
    are left out.
    """
    if isinstance(first, Tags) and isinstance(second, Tags):
        return Tags(first.class_ids | second.class_ids)
    if isinstance(first, Boxes) and isinstance(second, Boxes):
        seen = {_box_key(first, i) for i in range(len(first))}
        keep = [i for i in range(len(second)) if _box_key(second, i) not in seen]
        return _concat(first, second.take(keep))
    if isinstance(first, Instances) and isinstance(second, Instances):
        seen_inst = {_instance_key(first, i) for i in range(len(first))}
        keep = [i for i in range(len(second)) if _instance_key(second, i) not in seen_inst]
        return Instances(_concat(first.boxes, second.boxes.take(keep)),
                         [*first.segmentations, *(second.segmentations[i] for i in keep)])
    return None


def _box_key(b: Boxes, i: int) -> tuple[Any, ...]:
    return int(b.class_id[i]), *np.round(b.xyxy[i], 4).tolist()


def _instance_key(ann: Instances, i: int) -> tuple[Any, ...]:
    seg = annotation_to_payload(Instances(ann.boxes.take([i]), [ann.segmentations[i]]))["segmentations"][0]
    return *_box_key(ann.boxes, i), repr(seg)


def describe(ann: Annotation, onto: Ontology) -> str:
    """``3 boxes: RBC x2, WBC`` (for a problem line)."""
    counts = annotation_class_counts(ann)
    kind = type(ann).__name__.lower()
    what = ", ".join(f"{onto.by_id(c).name}" + (f" x{n}" if n > 1 else "") for c, n in sorted(counts.items()))
    return f"{sum(counts.values())} {kind} item(s): {what or 'none'}"
