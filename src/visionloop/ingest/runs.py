"""The record of each import run (``imports`` table): one import at a time per project, a heartbeat, stale runs.

Starting an import is one transaction that first writes the project row (a no-op update): that write locks the row
on PostgreSQL (the other starts wait until it commits, then see its result) and takes SQLite's single write lock,
so starts are serialised on both databases. Inside it, stale runs are marked ``interrupted``, then either the new
run's row is inserted as ``running`` with its owner (host, process id) and a heartbeat in ``report["owner"]``, or,
when a live run exists, a ``refused`` row is recorded and :class:`ImportRunningError` says which import runs. Of two
imports started at the same instant exactly one goes on, so two imports never race on the same images or classes.

A run is stale, and marked ``interrupted``, when its process is gone (same host) or its heartbeat is older than
:data:`STALE_AFTER` (another host, or a process id reused long after). A killed import is resumable: running the same
import again skips what is stored and completes the rest.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from visionloop.core.errors import ConflictError
from visionloop.storage.models import ImportRow, ProjectRow, utcnow
from visionloop.storage.project import Project

__all__ = ["STALE_AFTER", "ImportRun", "ImportRunningError", "start_run"]

STALE_AFTER = timedelta(minutes=15)
"""A running import whose heartbeat is older than this (and whose process cannot be checked) is stale."""
_SAME_HOST_STALE_AFTER = timedelta(hours=1)
"""On this host the process id decides; past this, a live process id is taken to be a reused one."""


class ImportRunningError(ConflictError):
    """Another import into the same project is running; ``run_id``, ``source``, ``host`` and ``pid`` name it."""

    def __init__(self, run_id: int, source: str, *, host: str, pid: int, started_at: datetime | None) -> None:
        self.run_id, self.source, self.host, self.pid = run_id, source, host, pid
        when = f", started {started_at:%Y-%m-%d %H:%M} UTC" if started_at else ""
        super().__init__(
            f"an import is running in this project (import #{run_id} of {source}{when}, process {pid} on {host}); "
            "wait for it to finish, then run this import again (re-running an import adds only what is missing)"
        )


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": utcnow().isoformat()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to another user
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


def _alive(report: dict[str, Any] | None, now: datetime) -> bool:
    """Whether the run that wrote ``report`` is still at work."""
    owner = (report or {}).get("owner")
    if not isinstance(owner, dict):
        return False  # a run recorded before heartbeats existed cannot be running any more
    try:
        beat = datetime.fromisoformat(str(owner["heartbeat"]))
        pid, host = int(owner["pid"]), str(owner["host"])
    except (KeyError, TypeError, ValueError):
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    age = now - beat
    if host == socket.gethostname():
        return _pid_alive(pid) and age < _SAME_HOST_STALE_AFTER
    return age < STALE_AFTER


def _running(conn: Connection) -> list[Any]:
    q = select(ImportRow.id, ImportRow.source, ImportRow.started_at, ImportRow.report).where(
        ImportRow.status == "running")
    return list(conn.execute(q.order_by(ImportRow.id)).all())


def _lock_starts(conn: Connection) -> None:
    """Serialise import starts until ``conn``'s transaction ends: a write to the project row (a row lock on
    PostgreSQL, the database write lock on SQLite), taken before anything is read, so no start decides on a view
    that another start is about to change."""
    conn.execute(update(ProjectRow).where(ProjectRow.id == 1).values(name=ProjectRow.name))


@dataclass
class ImportRun:
    """A started import's row: :meth:`beat` after each batch, :meth:`finish` at the end (or on failure)."""

    project: Project
    id: int
    interrupted: list[int]
    """Ids of stale runs this start marked ``interrupted``."""

    def beat(self) -> None:
        with self.project.transaction() as conn:
            conn.execute(update(ImportRow).where(ImportRow.id == self.id).values(report={"owner": _owner()}))

    def finish(self, status: str, report: dict[str, Any], *, format: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "report": report}
        if format is not None:
            values["format"] = format
        with self.project.transaction() as conn:
            conn.execute(update(ImportRow).where(ImportRow.id == self.id).values(**values))


def start_run(project: Project, source: str, format: str | None) -> ImportRun:
    """Record a new import as running, or raise :class:`ImportRunningError` when another one is alive.

    Stale runs found on the way are marked ``interrupted`` (their ids are in :attr:`ImportRun.interrupted`).
    """
    now = utcnow()
    with project.transaction() as conn:
        _lock_starts(conn)
        running = _running(conn)
        stale = [r.id for r in running if not _alive(r.report, now)]
        if stale:
            conn.execute(update(ImportRow).where(ImportRow.id.in_(stale)).values(
                status="interrupted", finished_at=now,
                report={"note": "the import's process ended before it finished; run the same import again to "
                                "complete it"}))
        alive = [r for r in running if r.id not in stale]
        values: dict[str, Any] = {"source": source, "format": format or "", "started_at": now}
        if alive:
            values.update(status="refused", finished_at=now, report={"running": alive[0].id})
        else:
            values.update(status="running", report={"owner": _owner()})
        run_id = int(conn.execute(ImportRow.__table__.insert().values(**values)).inserted_primary_key[0])
    if alive:
        first = alive[0]
        owner = first.report["owner"]
        raise ImportRunningError(first.id, first.source, host=owner["host"], pid=int(owner["pid"]),
                                 started_at=first.started_at)
    return ImportRun(project, run_id, stale)
