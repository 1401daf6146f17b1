"""Drift reports: recent production inputs compared with the training set, one row per check (migration 0010).

Each report covers a window of production samples against a reference (the images of the deployed model's training
version): maximum mean discrepancy of their embeddings with its permutation p-value, a two-sample test of the
confidences, the population stability index of the predicted classes, and simple image statistics (size, brightness,
blur). ``alert`` is set when a statistic crossed its threshold (see :mod:`visionloop.active.drift`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.storage.models import Base, utcnow

__all__ = ["DriftReportRow"]


class DriftReportRow(Base):
    """One drift check."""

    __tablename__ = "drift_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str | None] = mapped_column(String(128))
    reference: Mapped[str | None] = mapped_column(String(128))
    """What production was compared with: the dataset version (or run) of the deployed model."""
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    n_production: Mapped[int] = mapped_column(Integer)
    n_reference: Mapped[int] = mapped_column(Integer)
    mmd: Mapped[float | None] = mapped_column(Float)
    mmd_p: Mapped[float | None] = mapped_column(Float)
    confidence_stat: Mapped[float | None] = mapped_column(Float)
    confidence_p: Mapped[float | None] = mapped_column(Float)
    psi: Mapped[float | None] = mapped_column(Float)
    image_stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    alert: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_drift_reports_created", "created_at"),)
