"""One root exception; subclasses carry their fields and say how to fix the problem."""

from __future__ import annotations

from typing import Any


class VisionloopError(Exception):
    """Root of every error visionloop raises on purpose."""


class AnnotationValidationError(VisionloopError, ValueError):
    """An annotation or record failed validation; ``expected`` and ``actual`` say what was wrong."""

    def __init__(self, what: str, *, expected: Any, actual: Any, hint: str = "") -> None:
        self.what, self.expected, self.actual, self.hint = what, expected, actual, hint
        msg = f"{what}: expected {expected}, got {actual}"
        super().__init__(f"{msg}. {hint}" if hint else msg)


class NotFoundError(VisionloopError, LookupError):
    """A named thing (project, image, class, version, run) does not exist."""

    def __init__(self, kind: str, key: Any, *, choices: list[str] | None = None, hint: str = "") -> None:
        self.kind, self.key, self.choices, self.hint = kind, key, choices or [], hint
        msg = f"{kind} {key!r} not found"
        if self.choices:
            msg += f"; known: {', '.join(map(str, self.choices[:20]))}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)


class ConflictError(VisionloopError):
    """The request conflicts with the state of the project (duplicate name, wrong task, ...)."""


class StaleRevisionError(ConflictError):
    """A save was based on a revision that is no longer the head: someone else saved in between."""

    def __init__(self, image_id: int, *, base_revision: int | None, head_revision: int | None) -> None:
        self.image_id, self.base_revision, self.head_revision = image_id, base_revision, head_revision
        super().__init__(
            f"annotation of image {image_id} was edited concurrently: your edit is based on revision "
            f"{base_revision}, but the head is now revision {head_revision}; reload revision {head_revision}, "
            "reapply your change and save again"
        )


class FormatError(VisionloopError):
    """An annotation file or folder could not be read or written in the named format."""

    def __init__(self, path: Any, fmt: str | None, reason: str) -> None:
        self.path, self.format, self.reason = path, fmt, reason
        where = f"{fmt} at {path}" if fmt else str(path)
        super().__init__(f"{where}: {reason}")


class ImageError(VisionloopError):
    """A file is not a usable image (corrupt, truncated, too large, unsupported)."""

    def __init__(self, path: Any, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class ImageTooLargeError(ImageError):
    """An image has more pixels than its project accepts (the decompression-bomb guard)."""

    def __init__(self, path: Any, *, width: int, height: int, max_pixels: int) -> None:
        self.width, self.height, self.max_pixels = width, height, max_pixels
        super().__init__(path, (
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} (decompression-bomb "
            f"guard); if the image is genuine, raise the project's limit: max_image_pixels = {width * height} in "
            "its visionloop.toml (or VISIONLOOP_MAX_IMAGE_PIXELS for every project)"))
