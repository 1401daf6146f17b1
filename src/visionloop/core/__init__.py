"""Types every part of visionloop shares: tasks, annotations, image records, the ontology and errors."""

from visionloop.core.annotations import (
    RLE,
    Annotation,
    Boxes,
    Instances,
    Label,
    Polygons,
    SemanticMask,
    Tags,
    annotation_class_counts,
    annotation_from_payload,
    annotation_to_payload,
)
from visionloop.core.errors import (
    AnnotationValidationError,
    ConflictError,
    FormatError,
    ImageError,
    NotFoundError,
    StaleRevisionError,
    VisionloopError,
)
from visionloop.core.ontology import ClassDef, Ontology
from visionloop.core.records import ImageRecord
from visionloop.core.task import Task

__all__ = [
    "RLE",
    "Annotation",
    "AnnotationValidationError",
    "Boxes",
    "ClassDef",
    "ConflictError",
    "FormatError",
    "ImageError",
    "ImageRecord",
    "Instances",
    "Label",
    "NotFoundError",
    "Ontology",
    "Polygons",
    "SemanticMask",
    "StaleRevisionError",
    "Tags",
    "Task",
    "VisionloopError",
    "annotation_class_counts",
    "annotation_from_payload",
    "annotation_to_payload",
]
