"""The loop's history: each retrain-and-compare cycle and each deployment change it made (migration 0010).

A cycle is started by a trigger (enough new reviewed annotations, a schedule, a drift alert, or a person); it freezes
a dataset version, trains a challenger with the champion's recipe, evaluates both on the same frozen test set and
decides. A row is written when the cycle starts and updated as it goes (``state``); the decision names the metric,
both values, the bootstrap confidence interval of the difference and why. A rollback is a row of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.storage.models import Base, utcnow

__all__ = ["LoopCycleRow"]


class LoopCycleRow(Base):
    """One cycle of the loop, or one rollback (``trigger`` = ``rollback``)."""

    __tablename__ = "loop_cycles"
    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))
    """``count``, ``schedule``, ``drift``, ``manual`` or ``rollback``."""
    state: Mapped[str] = mapped_column(String(16))
    """``running``, ``promoted``, ``kept`` (the champion stays), ``failed`` or ``rolled_back``."""
    new_annotations: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[str | None] = mapped_column(String(128))
    test_version: Mapped[str | None] = mapped_column(String(128))
    """The version whose test split both models were measured on."""
    champion_run: Mapped[str | None] = mapped_column(String(128))
    challenger_run: Mapped[str | None] = mapped_column(String(128))
    package: Mapped[str | None] = mapped_column(String(256))
    """The package deployed by the cycle (promoted or rolled back to)."""
    metric: Mapped[str | None] = mapped_column(String(32))
    champion_value: Mapped[float | None] = mapped_column(Float)
    challenger_value: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    """Bootstrap confidence interval of challenger minus champion over the test images."""
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    author: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_loop_cycles_started", "started_at"),)
