"""The project's classes: stable ids, names, colours, flags; and class-id remapping of annotations."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from visionloop.core.annotations import Annotation, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import AnnotationValidationError, NotFoundError

_PALETTE = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c",
    "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075",
]


def default_colour(class_id: int) -> str:
    return _PALETTE[class_id % len(_PALETTE)]


CLASS_KEYS = "1234567890"
"""Default keyboard keys of the first ten active classes, in class order."""


def class_keys(ontology: Ontology) -> dict[int, str | None]:
    """Keyboard key of each active class: its own (``meta["key"]``, set by the project API), else the digit of its
    place among the active classes (1..9, 0 for the first ten) unless another class has taken that digit; None past
    the tenth class without a key of its own."""
    taken = {c.meta["key"] for c in ontology.active if c.meta.get("key")}
    return {c.id: c.meta.get("key") or (CLASS_KEYS[i] if i < len(CLASS_KEYS) and CLASS_KEYS[i] not in taken
                                        else None)
            for i, c in enumerate(ontology.active)}


@dataclass(frozen=True, kw_only=True)
class ClassDef:
    """One class. ``id`` never changes; a rename changes ``name`` only.

    ``orientation_sensitive``: mirroring changes the class (left vs right), so augmentation must not flip.
    ``colour_sensitive``: colour tells classes apart, so augmentation must not jitter colour or make grey.
    ``active`` is False for classes merged into another or split away; their ids stay reserved.
    """

    id: int
    name: str
    colour: str = ""
    parent_id: int | None = None
    orientation_sensitive: bool = False
    colour_sensitive: bool = False
    active: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise AnnotationValidationError(
                "class name", expected="a non-empty name without surrounding spaces", actual=repr(self.name)
            )
        if not self.colour:
            object.__setattr__(self, "colour", default_colour(self.id))


@dataclass(frozen=True)
class Ontology:
    """An ordered, immutable snapshot of classes (active and retired)."""

    classes: tuple[ClassDef, ...] = ()

    def __post_init__(self) -> None:
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise AnnotationValidationError("class ids", expected="unique", actual=ids)
        names = [c.name for c in self.active]
        if len(set(names)) != len(names):
            raise AnnotationValidationError("active class names", expected="unique", actual=names)

    @property
    def active(self) -> list[ClassDef]:
        return [c for c in self.classes if c.active]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.active]

    def by_id(self, class_id: int) -> ClassDef:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise NotFoundError("class id", class_id, choices=[str(c.id) for c in self.classes])

    def by_name(self, name: str) -> ClassDef:
        for c in self.active:
            if c.name == name:
                return c
        close = difflib.get_close_matches(name, self.names, n=5) or self.names
        raise NotFoundError("class", name, choices=close)

    def get(self, name: str) -> ClassDef | None:
        return next((c for c in self.active if c.name == name), None)

    @property
    def orientation_sensitive(self) -> bool:
        return any(c.orientation_sensitive for c in self.active)

    @property
    def colour_sensitive(self) -> bool:
        return any(c.colour_sensitive for c in self.active)

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": c.id, "name": c.name, "colour": c.colour, "parent_id": c.parent_id,
                "orientation_sensitive": c.orientation_sensitive, "colour_sensitive": c.colour_sensitive,
                "active": c.active, "meta": c.meta,
            }
            for c in self.classes
        ]

    @classmethod
    def from_json(cls, rows: Iterable[Mapping[str, Any]]) -> Ontology:
        return cls(tuple(ClassDef(**dict(r)) for r in rows))

    def with_class(self, cdef: ClassDef) -> Ontology:
        return Ontology(tuple(c for c in self.classes if c.id != cdef.id) + (cdef,))

    def renamed(self, class_id: int, name: str) -> Ontology:
        return self.with_class(replace(self.by_id(class_id), name=name))


def remap_annotation(ann: Annotation, mapping: Mapping[int, int]) -> Annotation:
    """Return ``ann`` with class ids replaced by ``mapping`` (ids not in it are kept)."""

    def m(c: int) -> int:
        return mapping.get(int(c), int(c))

    if isinstance(ann, Label):
        return Label(m(ann.class_id))
    if isinstance(ann, Tags):
        return Tags(frozenset(m(c) for c in ann.class_ids))
    if isinstance(ann, Boxes):
        ids = np.array([m(c) for c in ann.class_id], dtype=np.int64)
        return Boxes(ann.xyxy, ids, ann.score, ann.track_id, ann.attributes)
    if isinstance(ann, Instances):
        return Instances(remap_annotation(ann.boxes, mapping), list(ann.segmentations))  # type: ignore[arg-type]
    if isinstance(ann, SemanticMask):
        out = ann.mask.copy()
        for src, dst in mapping.items():
            out[ann.mask == src] = dst
        return SemanticMask(out, ann.ignore_index)
    raise AnnotationValidationError("annotation", expected="an Annotation", actual=type(ann).__name__)
