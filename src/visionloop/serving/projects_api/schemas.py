"""Pydantic request and response bodies of the project API (``...Public`` are responses)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from visionloop.core.task import Task
from visionloop.serving.projects_api.tile_schemas import TilesPublic

__all__ = [
    "AnnotationSave",
    "AnnotationSaved",
    "ClassCreate",
    "ClassPublic",
    "ClassUpdate",
    "HealthPublic",
    "ImageCountPublic",
    "ImageDetailPublic",
    "ImagePublic",
    "ImagesPublic",
    "ProjectCreate",
    "ProjectDetailPublic",
    "ProjectPublic",
    "ReviewPublic",
    "RevisionPublic",
    "SaveConflictPublic",
    "StatsPublic",
    "UtcDatetime",
    "VersionPublic",
    "YoursPublic",
]


def _as_utc(value: datetime) -> datetime:
    # The store keeps UTC; SQLite hands it back without a zone, so say it is UTC rather than leave it ambiguous.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class HealthPublic(BaseModel):
    status: str
    version: str
    projects: int


class ProjectPublic(BaseModel):
    name: str
    task: str
    images: int


class StatsPublic(BaseModel):
    """As :meth:`visionloop.storage.Project.stats` gives it; ``annotations`` counts instances in head revisions."""

    project: str
    task: str
    images: int
    annotated_images: int
    annotations: int
    classes: dict[str, int] = Field(description="Active class name -> instances in head revisions.")


class ProjectDetailPublic(ProjectPublic):
    stats: StatsPublic


class ImagePublic(BaseModel):
    id: int
    sha256: str
    name: str
    width: int = Field(description="Pixels after EXIF orientation.")
    height: int = Field(description="Pixels after EXIF orientation.")
    format: str
    url: str = Field(description="Original bytes (path relative to the server).")
    thumbnail_url: str = Field(description="JPEG thumbnail at the default size; add ?size=N for another.")
    annotated: bool
    head_revision: int | None = Field(description="Head revision number, or null when never annotated.")
    review_state: str = Field(default="todo", description="Current review state: todo (also never reviewed), "
                              "in_progress, submitted, approved or rejected.")


class ImagesPublic(BaseModel):
    total: int = Field(description="Images that pass the filters (all pages).")
    offset: int
    limit: int
    after: int | None = Field(default=None, description="The ``after`` this page was asked for.")
    next_after: int | None = Field(default=None, description="Pass as ``after`` for the next page; null on the last.")
    items: list[ImagePublic]


class ImageCountPublic(BaseModel):
    total: int = Field(description="Images that pass the filters.")


class ReviewPublic(BaseModel):
    state: str = Field(description="todo, in_progress, submitted, approved or rejected")
    reason: str | None = Field(description="Why, for a rejection.")
    author: str
    created_at: UtcDatetime
    tags: list[str] = Field(default_factory=list, description="Issue tags of a rejection (missing_object, ...).")
    comment: dict[str, list[float]] | None = Field(default=None, description=(
        'Where the reviewer drew the comment: {"point": [x, y]} or {"box": [x1, y1, x2, y2]}, pixels.'))


class ImageDetailPublic(ImagePublic):
    source_file: str = Field(description="Name of the file the image was imported from, without its folder (the "
                             "server's paths stay private); '' when unknown. ``name`` is its path within the source.")
    ingested_at: UtcDatetime | None
    video_id: str | None
    frame_index: int | None
    timestamp: float | None
    meta: dict[str, Any]
    annotation: dict[str, Any] | None = Field(description="Head annotation payload (see core.annotations).")
    tiles: TilesPublic | None = Field(default=None, description="The tile pyramid of an image larger than 4096 px "
                                      "on a side, to read it tile by tile; null for a smaller image (read it whole).")
    prev_id: int | None = Field(default=None, description="The image before this one in the list under the same "
                                "filters (pass the list's filters to the detail request); null at the start.")
    next_id: int | None = Field(default=None, description="The image after this one under the same filters; null "
                                "at the end.")
    review: ReviewPublic | None = Field(default=None, description="The latest review state change; null when "
                                        "never reviewed (state todo).")


class RevisionPublic(BaseModel):
    revision: int
    author: str
    created_at: UtcDatetime
    payload: dict[str, Any]


class ClassPublic(BaseModel):
    id: int
    name: str
    colour: str = Field(description="#rrggbb; a fixed palette by id unless chosen.")
    key: str | None = Field(description="Keyboard key that picks the class: its own, else 1..9, 0 by place among "
                            "the active classes; null for a retired class or past the tenth without one.")
    parent_id: int | None
    orientation_sensitive: bool
    colour_sensitive: bool
    active: bool = Field(description="False for classes merged into another or split away; ids stay reserved.")
    meta: dict[str, Any]


class ClassCreate(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    colour: str | None = Field(default=None, description="#rrggbb; null: the palette's colour for the class id.")
    key: str | None = Field(default=None, description="One character; null: the default digit by place.")
    orientation_sensitive: bool = False
    colour_sensitive: bool = False


class ClassUpdate(BaseModel):
    """What to change; a field left out stays as it is. ``key: ""`` goes back to the default key."""

    name: str | None = Field(default=None, min_length=1, max_length=256)
    colour: str | None = None
    key: str | None = Field(default=None, max_length=1)
    orientation_sensitive: bool | None = None
    colour_sensitive: bool | None = None
    active: bool | None = Field(default=None, description="false retires the class (refused while annotations "
                                "use it: merge it instead); true brings a retired class back.")


class ProjectCreate(BaseModel):
    name: str = Field(description="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; also "
                      "the project's folder name.", examples=["blood-cells"])
    task: Task
    classes: list[ClassCreate] = Field(default_factory=list, max_length=1000)


class VersionPublic(BaseModel):
    name: str
    task: str
    hash: str
    created_at: UtcDatetime | None
    ontology: list[dict[str, Any]]
    params: dict[str, Any]
    summary: dict[str, Any]


class AnnotationSave(BaseModel):
    """A new annotation revision, based on the head revision the edit started from."""

    base_revision: int | None = Field(description="Head revision the edit started from; null if never annotated.")
    payload: dict[str, Any] = Field(
        description='Annotation payload with a "type" key: label, tags, boxes, instances or semantic '
        "(as GET .../images/{id} returns it; boxes are xyxy pixels, class ids are the project's).",
        examples=[{"type": "boxes", "xyxy": [[10, 20, 110, 220]], "class_id": [1]}],
        json_schema_extra={
            "required": ["type"],
            "properties": {"type": {"enum": ["label", "tags", "boxes", "instances", "semantic"]}},
        },
    )


class AnnotationSaved(BaseModel):
    image_id: int
    revision: int


class YoursPublic(BaseModel):
    base_revision: int | None
    payload: dict[str, Any]


class SaveConflictPublic(BaseModel):
    """Body of the 409 of an annotation save: both versions, so the editor can show them and let the user keep
    either or merge (then save again with ``base_revision`` = ``head.revision``)."""

    detail: str
    error: str = "StaleRevisionError"
    base_revision: int | None
    head_revision: int | None
    head: RevisionPublic | None = Field(description="The revision someone else saved (null if it was undone by a "
                                        "concurrent delete).")
    yours: YoursPublic = Field(description="The edit that was refused, as sent.")
