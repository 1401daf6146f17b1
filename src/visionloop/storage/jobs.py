"""Background jobs of the platform server (import, export, train, evaluate, package), kept in the project database.

A job is a ``visionloop`` command the server runs in a child process (see :mod:`visionloop.serving.jobs`); its row
records what was asked (``kind``, ``params``), who asked (``created_by``), where it is (``state``, ``progress``), how it
ended (``result``, ``error``) and the tail of its log. States::

    queued -> running -> done | failed | cancelled
    queued -> cancelled
    running -> interrupted      (the server stopped while it ran: marked at the next start)

Transitions are compare-and-set updates (``WHERE state = ...``), so a cancel and a finish never both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.errors import NotFoundError
from visionloop.storage.models import Base, utcnow
from visionloop.storage.project import Project

__all__ = [
    "FINAL_STATES",
    "Job",
    "JobRow",
    "JobState",
    "create_job",
    "finish_job",
    "get_job",
    "interrupt_running",
    "list_jobs",
    "queued_jobs",
    "start_job",
    "update_job",
]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED})


class JobRow(Base):
    """One background job of the platform server (migration 0004)."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pid: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    state: JobState
    params: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    log: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pid: int | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _job(row: Any) -> Job:
    return Job(id=row.id, kind=row.kind, state=JobState(row.state), params=row.params or {},
               progress=row.progress or {}, result=row.result, error=row.error, log=row.log or "",
               created_by=row.created_by, created_at=row.created_at, started_at=row.started_at,
               finished_at=row.finished_at, pid=row.pid)


def create_job(project: Project, *, kind: str, params: dict[str, Any], created_by: str) -> Job:
    """A new ``queued`` job."""
    with project.transaction() as conn:
        jid = conn.execute(insert(JobRow).values(
            kind=kind, state=JobState.QUEUED.value, params=params, progress={"fraction": 0.0, "message": "queued"},
            log="", created_by=created_by, created_at=utcnow())).inserted_primary_key[0]
    return get_job(project, jid)


def get_job(project: Project, job_id: int) -> Job:
    with project.engine.connect() as conn:
        row = conn.execute(select(JobRow).where(JobRow.id == job_id)).first()
    if row is None:
        raise NotFoundError("job", job_id, hint="GET .../jobs lists the project's jobs")
    return _job(row)


def list_jobs(project: Project, *, limit: int = 100, kind: str | None = None,
              states: set[JobState] | None = None) -> list[Job]:
    """Newest first."""
    query = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(JobRow.kind == kind)
    if states:
        query = query.where(JobRow.state.in_([s.value for s in states]))
    with project.engine.connect() as conn:
        return [_job(r) for r in conn.execute(query).all()]


def queued_jobs(project: Project) -> list[Job]:
    """Jobs waiting to run, oldest first."""
    with project.engine.connect() as conn:
        rows = conn.execute(select(JobRow).where(JobRow.state == JobState.QUEUED.value).order_by(JobRow.id)).all()
    return [_job(r) for r in rows]


def _move(project: Project, job_id: int, *, from_states: set[JobState], **values: Any) -> bool:
    with project.transaction() as conn:
        done = conn.execute(update(JobRow).where(JobRow.id == job_id,
                                                 JobRow.state.in_([s.value for s in from_states])).values(**values))
    return done.rowcount == 1


def start_job(project: Project, job_id: int, *, pid: int | None = None) -> bool:
    """``queued`` -> ``running``; False when the job is no longer queued (cancelled meanwhile)."""
    return _move(project, job_id, from_states={JobState.QUEUED}, state=JobState.RUNNING.value, started_at=utcnow(),
                 pid=pid, progress={"fraction": 0.0, "message": "starting"})


def update_job(project: Project, job_id: int, **values: Any) -> bool:
    """Set ``progress``, ``log``, ``pid`` or ``params`` of a running job."""
    allowed = {"progress", "log", "pid", "params"}
    if not set(values) <= allowed:
        raise ValueError(f"update_job sets only {sorted(allowed)}, not {sorted(set(values) - allowed)}")
    return _move(project, job_id, from_states={JobState.RUNNING}, **values)


def finish_job(
    project: Project, job_id: int, state: JobState, *, result: dict[str, Any] | None = None, error: str | None = None,
    log: str | None = None, progress: dict[str, Any] | None = None,
) -> bool:
    """End a queued or running job in a final ``state``; False when it had ended already (the first end wins)."""
    if state not in FINAL_STATES:
        raise ValueError(f"{state} is not a final state")
    values: dict[str, Any] = {"state": state.value, "finished_at": utcnow(), "result": result, "error": error}
    if log is not None:
        values["log"] = log
    if progress is not None:
        values["progress"] = progress
    return _move(project, job_id, from_states={JobState.QUEUED, JobState.RUNNING}, **values)


def interrupt_running(project: Project) -> list[int]:
    """Mark every ``running`` job ``interrupted`` (the server that ran it stopped); returns their ids."""
    with project.transaction() as conn:
        ids = list(conn.execute(select(JobRow.id).where(JobRow.state == JobState.RUNNING.value)).scalars())
        if ids:
            conn.execute(update(JobRow).where(JobRow.id.in_(ids)).values(
                state=JobState.INTERRUPTED.value, finished_at=utcnow(),
                error="the server stopped while this job ran; start it again (a training run resumes from its last "
                      "checkpoint: POST .../jobs/{id}/resume)"))
    return ids
