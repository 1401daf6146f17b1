"""What requests may cost the model server: body bytes per request and in flight, image pixels, files per batch.

Every buffer the server keeps is bounded: a request body by ``max_request_bytes`` (one image) or ``max_batch_bytes``
(a batch request), all bodies being read or waiting for the model together by ``max_inflight_bytes`` (so the batch
queues, which only hold images of requests in flight, are bounded in bytes too), each model's queue by
``BatchConfig.max_queue`` requests. Beyond a per-request limit the answer is 413; beyond a shared one (the server is
busy, not the request wrong) it is 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from visionloop.core.errors import VisionloopError

__all__ = [
    "DEFAULT_MAX_BATCH_BYTES", "DEFAULT_MAX_BATCH_FILES", "DEFAULT_MAX_INFLIGHT_BYTES", "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_REQUEST_BYTES", "RETRY_AFTER_SECONDS", "ByteBudget", "BytesHeld", "OverloadedError", "ServerLimits",
]

DEFAULT_MAX_REQUEST_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BATCH_FILES = 32
DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_INFLIGHT_BYTES = 256 * 1024 * 1024
RETRY_AFTER_SECONDS = 1
"""What a 503 answer's ``Retry-After`` header asks the client to wait, seconds."""


class OverloadedError(VisionloopError):
    """The server is busy (a model's queue or the bytes in flight are at their limit); retry later (HTTP 503)."""


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest body of a single-image request, and largest image file in a batch request, bytes."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest image, width x height after decoding."""
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES
    """Most images in one batch request."""
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    """Largest body of a batch request, all its images together, bytes."""
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES
    """Request bodies held by the server at once (being read, queued for the model or predicted), bytes."""

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_pixels", "max_batch_files", "max_batch_bytes", "max_inflight_bytes"):
            if getattr(self, name) < 1:
                raise VisionloopError(f"server limit {name} must be at least 1, got {getattr(self, name)}")
        largest = max(self.max_request_bytes, self.max_batch_bytes)
        if self.max_inflight_bytes < largest:
            raise VisionloopError(
                f"max_inflight_bytes ({self.max_inflight_bytes:,}) is below the largest request allowed ({largest:,}),"
                " which could then never be answered; raise it or lower the request limits")


class BytesHeld:
    """The bytes one request holds from a :class:`ByteBudget`; :meth:`add` takes more, the budget frees them all."""

    def __init__(self, budget: ByteBudget) -> None:
        self.budget, self.bytes = budget, 0

    def add(self, n: int) -> None:
        self.budget.take(n)
        self.bytes += n


class ByteBudget:
    """Bytes the server may hold for all requests together; used from the event loop only (no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, n: int) -> None:
        if self.used + n > self.limit:
            raise OverloadedError(
                f"the server holds {self.used:,} bytes of requests in flight; {n:,} more would pass its limit of "
                f"{self.limit:,}; retry later")
        self.used += n

    @contextmanager
    def hold(self) -> Iterator[BytesHeld]:
        """A request's share, given back when the block ends (answered, refused or failed)."""
        held = BytesHeld(self)
        try:
            yield held
        finally:
            self.used -= held.bytes
