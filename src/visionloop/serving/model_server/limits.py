"""What one request may cost the model server: body bytes, image pixels, files per batch request."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_BATCH_FILES", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_REQUEST_BYTES", "ServerLimits"]

DEFAULT_MAX_REQUEST_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BATCH_FILES = 32


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest body of a single-image request, and largest image file, bytes."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest image, width x height after decoding."""
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES
    """Most images in one batch request."""
