"""The loop's history: each retrain-and-compare cycle and each deployment change it made (migration 0010).

A cycle is started by a trigger (enough new reviewed annotations, a schedule, a drift alert, or a person); it freezes
a dataset version, trains a challenger with the champion's recipe, evaluates both on the same frozen test set and
decides. A row is written when the cycle starts and updated as it goes (``state``); the decision names the metric,
both values, the bootstrap confidence interval of the difference and why. A rollback is a row of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Float, Index, Integer, String, Text, func, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.errors import NotFoundError
from visionloop.storage.models import Base, utcnow
from visionloop.storage.project import Project

__all__ = [
    "INTERRUPTED",
    "STATES",
    "TRIGGERS",
    "LoopCycle",
    "LoopCycleRow",
    "count_cycles",
    "get_cycle",
    "interrupt_running",
    "last_cycle",
    "list_cycles",
    "start_cycle",
    "update_cycle",
]


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


# ---- functions --------------------------------------------------------------------------------------------------

TRIGGERS = ("count", "schedule", "drift", "manual", "rollback")
STATES = ("running", "promoted", "kept", "failed", "rolled_back")
INTERRUPTED = "interrupted: the cycle's process stopped before it decided (killed, crashed or the server stopped)"
_FIELDS = ("new_annotations", "version", "test_version", "champion_run", "challenger_run", "package", "metric",
           "champion_value", "challenger_value", "ci_low", "ci_high", "reason", "details")


@dataclass(frozen=True)
class LoopCycle:
    """A row of ``loop_cycles`` as plain values (see :class:`LoopCycleRow` for the fields)."""

    id: int
    trigger: str
    state: str
    new_annotations: int
    version: str | None
    test_version: str | None
    champion_run: str | None
    challenger_run: str | None
    package: str | None
    metric: str | None
    champion_value: float | None
    challenger_value: float | None
    ci_low: float | None
    ci_high: float | None
    reason: str | None
    details: dict[str, Any]
    author: str
    started_at: datetime
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _cycle(row: Any) -> LoopCycle:
    data = {f.name: getattr(row, f.name) for f in fields(LoopCycle)}
    data["details"] = dict(row.details or {})
    data["started_at"], data["finished_at"] = _utc(row.started_at), _utc(row.finished_at)
    return LoopCycle(**data)


def _check(trigger: str | None = None, state: str | None = None) -> None:
    if trigger is not None and trigger not in TRIGGERS:
        raise NotFoundError("loop trigger", trigger, choices=list(TRIGGERS))
    if state is not None and state not in STATES:
        raise NotFoundError("loop cycle state", state, choices=list(STATES))


def interrupt_running(project: Project, *, conn: Connection | None = None) -> list[int]:
    """Mark every ``running`` cycle ``failed`` (:data:`INTERRUPTED`); returns their ids. Call it only while holding
    the project's loop lock (no cycle can then be running for real)."""
    with project._conn(conn) as c:
        ids = list(c.execute(select(LoopCycleRow.id).where(LoopCycleRow.state == "running")).scalars())
        if ids:
            c.execute(update(LoopCycleRow).where(LoopCycleRow.id.in_(ids))
                      .values(state="failed", reason=INTERRUPTED, finished_at=utcnow()))
    return ids


def start_cycle(project: Project, *, trigger: str, author: str, new_annotations: int = 0,
                details: dict[str, Any] | None = None, **values: Any) -> LoopCycle:
    """Record a ``running`` cycle (``values``: more fields known at the start, e.g. ``champion_run``)."""
    _check(trigger)
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise NotFoundError("loop cycle field", unknown[0], choices=list(_FIELDS))
    with project.transaction() as c:
        cid = c.execute(insert(LoopCycleRow).values(
            trigger=trigger, state="running", author=author, new_annotations=int(new_annotations),
            details=dict(details or {}), **values)).inserted_primary_key[0]
        return _cycle(c.execute(select(LoopCycleRow).where(LoopCycleRow.id == cid)).one())


def update_cycle(project: Project, cycle_id: int, *, conn: Connection | None = None, state: str | None = None,
                 finished: bool = False, details: dict[str, Any] | None = None, **values: Any) -> LoopCycle:
    """Set fields of a cycle; ``details`` are merged into the stored ones; ``finished`` stamps ``finished_at``.
    With ``conn``, in the caller's transaction (e.g. with the event of a promotion)."""
    _check(state=state)
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise NotFoundError("loop cycle field", unknown[0], choices=list(_FIELDS))
    with project._conn(conn) as c:
        row = c.execute(select(LoopCycleRow).where(LoopCycleRow.id == cycle_id)).first()
        if row is None:
            raise NotFoundError("loop cycle", cycle_id)
        changes: dict[str, Any] = dict(values)
        if state is not None:
            changes["state"] = state
        if details:
            changes["details"] = {**(row.details or {}), **details}
        if finished:
            changes["finished_at"] = utcnow()
        if changes:
            c.execute(update(LoopCycleRow).where(LoopCycleRow.id == cycle_id).values(**changes))
        return _cycle(c.execute(select(LoopCycleRow).where(LoopCycleRow.id == cycle_id)).one())


def get_cycle(project: Project, cycle_id: int) -> LoopCycle:
    with project.engine.connect() as c:
        row = c.execute(select(LoopCycleRow).where(LoopCycleRow.id == cycle_id)).first()
    if row is None:
        raise NotFoundError("loop cycle", cycle_id)
    return _cycle(row)


def list_cycles(project: Project, *, limit: int = 100, offset: int = 0) -> list[LoopCycle]:
    """Cycles, newest first."""
    with project.engine.connect() as c:
        rows = c.execute(select(LoopCycleRow).order_by(LoopCycleRow.id.desc()).offset(max(0, offset))
                         .limit(max(0, limit))).all()
    return [_cycle(r) for r in rows]


def count_cycles(project: Project) -> int:
    with project.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(LoopCycleRow)).scalar_one())


def last_cycle(project: Project, *, states: tuple[str, ...] = ("promoted",)) -> LoopCycle | None:
    """The newest cycle in one of ``states``, or None."""
    with project.engine.connect() as c:
        row = c.execute(select(LoopCycleRow).where(LoopCycleRow.state.in_(states))
                        .order_by(LoopCycleRow.id.desc()).limit(1)).first()
    return _cycle(row) if row is not None else None
