"""What the project knows about one stored image."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from visionloop.core.errors import AnnotationValidationError


@dataclass(frozen=True, kw_only=True)
class ImageRecord:
    """One image in a project. ``width``/``height`` are pixels after EXIF orientation.

    Frames of a video are images with ``video_id``, ``frame_index`` and ``timestamp`` (seconds) set.
    """

    id: int
    sha256: str
    width: int
    height: int
    format: str
    name: str
    source_uri: str = ""
    ingested_at: datetime | None = None
    video_id: str | None = None
    frame_index: int | None = None
    timestamp: float | None = None
    phash: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise AnnotationValidationError(
                "image size", expected="width and height > 0", actual=(self.width, self.height)
            )
        if len(self.sha256) != 64:
            raise AnnotationValidationError("sha256", expected="64 hex digits", actual=self.sha256)
        if (self.frame_index is not None) and self.video_id is None:
            raise AnnotationValidationError(
                "video frame", expected="video_id with frame_index", actual=f"frame_index={self.frame_index}"
            )
