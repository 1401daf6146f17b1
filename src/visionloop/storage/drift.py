"""Drift reports: recent production inputs compared with the training set, one row per check (migration 0010).

Each report covers a window of production samples against a reference (the images of the deployed model's training
version): maximum mean discrepancy of their embeddings with its permutation p-value, a two-sample test of the
confidences, the population stability index of the predicted classes, and simple image statistics (size, brightness,
blur). ``alert`` is set when a statistic crossed its threshold (see :mod:`visionloop.active.drift`).

:func:`add_drift_report` writes one in the caller's transaction (with the ``drift.alert`` event when it alerts, so
neither exists without the other); :func:`list_drift_reports` reads them back, newest first, as
:class:`DriftReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, DateTime, Float, Index, Integer, String, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.errors import NotFoundError
from visionloop.storage.models import Base, utcnow
from visionloop.storage.project import Project

__all__ = ["MAX_REPORTS", "DriftReport", "DriftReportRow", "add_drift_report", "get_drift_report",
           "latest_drift_report", "list_drift_reports"]

MAX_REPORTS = 1000
"""The most reports one listing returns."""


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


@dataclass(frozen=True, kw_only=True)
class DriftReport:
    """One drift check as stored (see :class:`DriftReportRow` for the fields; times are aware, UTC).

    ``image_stats``: per statistic (``size``, ``brightness``, ``blur``) its comparison (KS, p, PSI, histograms);
    ``details``: what else the check recorded (thresholds, which statistics alerted, the class histograms, samples
    left out and why)."""

    window_start: datetime
    window_end: datetime
    n_production: int
    n_reference: int
    model: str | None = None
    reference: str | None = None
    mmd: float | None = None
    mmd_p: float | None = None
    confidence_stat: float | None = None
    confidence_p: float | None = None
    psi: float | None = None
    image_stats: dict[str, Any] = field(default_factory=dict)
    alert: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "reference": self.reference,
                "window_start": _iso(self.window_start), "window_end": _iso(self.window_end),
                "n_production": self.n_production, "n_reference": self.n_reference, "mmd": self.mmd,
                "mmd_p": self.mmd_p, "confidence_stat": self.confidence_stat, "confidence_p": self.confidence_p,
                "psi": self.psi, "image_stats": self.image_stats, "alert": self.alert, "details": self.details,
                "created_at": _iso(self.created_at)}


_COLUMNS = ("model", "reference", "window_start", "window_end", "n_production", "n_reference", "mmd", "mmd_p",
            "confidence_stat", "confidence_p", "psi", "image_stats", "alert", "details")


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _iso(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None  # type: ignore[union-attr]


def _report(row: Any) -> DriftReport:
    values = {k: getattr(row, k) for k in _COLUMNS}
    values["window_start"], values["window_end"] = _utc(row.window_start), _utc(row.window_end)
    return DriftReport(**values, id=row.id, created_at=_utc(row.created_at))


def add_drift_report(conn: Connection, report: DriftReport) -> int:
    """Write ``report`` in the caller's transaction; returns its id (``report.id`` and ``created_at`` are ignored)."""
    values = {k: getattr(report, k) for k in _COLUMNS}
    return int(conn.execute(insert(DriftReportRow).values(**values, created_at=utcnow())).inserted_primary_key[0])


def list_drift_reports(project: Project, *, limit: int = 100, since: datetime | None = None) -> list[DriftReport]:
    """The newest ``limit`` reports (at most :data:`MAX_REPORTS`), newest first; only those made at or after
    ``since`` when given."""
    query = select(DriftReportRow).order_by(DriftReportRow.id.desc()).limit(max(0, min(limit, MAX_REPORTS)))
    if since is not None:
        query = query.where(DriftReportRow.created_at >= since)
    with project.engine.connect() as conn:
        return [_report(r) for r in conn.execute(query).all()]


def latest_drift_report(project: Project) -> DriftReport | None:
    found = list_drift_reports(project, limit=1)
    return found[0] if found else None


def get_drift_report(project: Project, report_id: int) -> DriftReport:
    with project.engine.connect() as conn:
        row = conn.execute(select(DriftReportRow).where(DriftReportRow.id == report_id)).first()
    if row is None:
        raise NotFoundError("drift report", report_id, hint="GET .../drift lists the project's reports")
    return _report(row)
