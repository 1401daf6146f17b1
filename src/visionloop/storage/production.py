"""Images that came back from production: what a model server sent, with its prediction (migration 0010).

A model server attached to a project sends chosen predictions back (see :mod:`visionloop.active.samplers`). Each
sample becomes a project image (stored once by content, like any import) with the prediction as its pre-annotation,
and one row here saying where it came from: the model and package version that predicted it, the samplers that chose
it and their score, and whether it belongs to the *random slice*, the unbiased sample that alone may enter a frozen
test set. ``request_id`` is the sender's key for the sample: a sample sent twice (a retry after a lost answer) is
stored once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.storage.models import Base, utcnow

__all__ = ["ProductionSampleRow"]


class ProductionSampleRow(Base):
    """One prediction a model server sent back."""

    __tablename__ = "production_samples"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    server: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    package_version: Mapped[str | None] = mapped_column(String(64))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    samplers: Mapped[list[Any]] = mapped_column(JSON)
    """Names of the samplers that chose it (``random`` for the random slice)."""
    score: Mapped[float | None] = mapped_column(Float)
    random_slice: Mapped[bool] = mapped_column(Boolean, default=False)
    prediction: Mapped[dict[str, Any]] = mapped_column(JSON)
    predicted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_production_samples_received", "received_at"),
                      Index("ix_production_samples_image", "image_id"))
