"""The server's job queue: one heavy job at a time, first come first served across all the projects it serves.

``JobQueue.start`` (in the app's lifespan) marks jobs that were ``running`` when the server last stopped as
``interrupted`` and queues again those still ``queued``, oldest first; one worker thread then runs the jobs one after
the other (:func:`visionloop.serving.jobs.runner.run_steps`), writing their state, progress and log tail to the job's
row. ``stop`` stops the running job's process group and marks it ``interrupted``. A job's working folders (an import's
uploaded files, an export's unzipped copy) are removed when it ends; its files (log, result, ``export.zip``) stay, the
newest ``Settings.job_keep_exports`` export zips of a project. At most ``Settings.job_max_queued`` jobs wait.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visionloop.core.errors import ConflictError
from visionloop.core.settings import Settings
from visionloop.serving.jobs.kinds import EXPORT_ZIP, JOBS_DIR, STAGING_PREFIX, get_kind, job_dir
from visionloop.serving.jobs.runner import Outcome, StopRequest, run_steps
from visionloop.serving.projects_api.project_registry import ProjectRegistry
from visionloop.storage import jobs as store
from visionloop.storage.jobs import Job, JobState
from visionloop.storage.project import Project

__all__ = ["FollowUp", "JobQueue"]

log = logging.getLogger(__name__)

FollowUp = Callable[[Project, Job, dict[str, Any]], tuple[str, dict[str, Any]] | None]
"""``follow_up(project, job, result) -> (kind, params)`` of a job to queue when ``job`` is done, or None."""


class JobQueue:
    """FIFO of ``(project name, job id)``; one worker thread. ``follow_ups``: per kind, a job to queue after a job of
    that kind is done (its id goes into the result as ``follow_up_job``)."""

    def __init__(self, registry: ProjectRegistry, settings: Settings, *,
                 follow_ups: dict[str, FollowUp] | None = None) -> None:
        self.registry, self.settings, self.follow_ups = registry, settings, dict(follow_ups or {})
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: tuple[str, int, StopRequest] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        waiting: list[tuple[Any, str, int]] = []
        for project in self.registry.all():
            interrupted = store.interrupt_running(project)
            if interrupted:
                log.warning("project %s: jobs %s were running when the server stopped; marked interrupted",
                            project.name, interrupted)
            waiting += [(j.created_at, project.name, j.id) for j in store.queued_jobs(project)]
            for stale in (Path(project.root) / JOBS_DIR).glob(f"{STAGING_PREFIX}*"):  # uploads cut by a stop
                shutil.rmtree(stale, ignore_errors=True)
        for _, name, jid in sorted(waiting):
            self._queue.put((name, jid))
        self._thread = threading.Thread(target=self._work, name="visionloop-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking jobs; the running one's processes are stopped and it is marked ``interrupted``."""
        self._stopping.set()
        with self._lock:
            if self._current is not None:
                self._current[2].set(JobState.INTERRUPTED)
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.settings.job_cancel_grace_s + 30)

    # ---- requests ------------------------------------------------------------------------------------------------
    def submit(self, project: Project, *, kind: str, params: dict[str, Any], created_by: str,
               prepare: Callable[[Job, Path], None] | None = None) -> Job:
        """Record a ``queued`` job and queue it. ``prepare(job, folder)`` fills the job's folder first (an upload);
        when it raises, the job is recorded as failed with the error and the error is raised."""
        get_kind(kind)  # an unknown kind fails before anything is recorded
        self.check_room()
        job = store.create_job(project, kind=kind, params=params, created_by=created_by)
        if prepare is not None:
            try:
                prepare(job, job_dir(project, job.id))
            except BaseException as e:
                store.finish_job(project, job.id, JobState.FAILED, error=str(e)[:2000])
                shutil.rmtree(job_dir(project, job.id), ignore_errors=True)
                raise
        self._queue.put((project.name, job.id))
        return store.get_job(project, job.id)

    def check_room(self) -> None:
        """ConflictError when ``Settings.job_max_queued`` jobs wait already."""
        waiting = self._queue.qsize()
        if waiting >= self.settings.job_max_queued:
            raise ConflictError(f"{waiting} jobs are waiting to run on this server (its job_max_queued setting); "
                                "start this one when some have run, or cancel some")

    def cancel(self, project: Project, job_id: int, *, by: str) -> Job:
        """Cancel a queued job at once, or stop a running one (its state follows when its processes are gone)."""
        job = store.get_job(project, job_id)
        if job.final:
            raise ConflictError(f"job {job_id} has ended ({job.state.value}); there is nothing to cancel")
        with self._lock:
            current = self._current
            if current is not None and current[:2] == (project.name, job_id):
                current[2].set(JobState.CANCELLED, by)
            else:
                store.finish_job(project, job_id, JobState.CANCELLED, error=f"cancelled by {by}",
                                 progress={**job.progress, "message": "cancelled"})
        return store.get_job(project, job_id)

    @property
    def running(self) -> tuple[str, int] | None:
        """(project name, job id) of the job running now."""
        with self._lock:
            return None if self._current is None else self._current[:2]

    # ---- the worker ----------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stopping.is_set():
            item = self._queue.get()
            if item is None:
                return
            name, job_id = item
            try:
                self._run_one(self.registry.get(name), job_id)
            except Exception:  # a broken job never stops the queue
                log.exception("job %s of project %s could not run", job_id, name)

    def _run_one(self, project: Project, job_id: int) -> None:
        stop = StopRequest()
        with self._lock:
            if self._stopping.is_set():
                return
            self._current = (project.name, job_id, stop)
        try:
            if not store.start_job(project, job_id):
                return  # cancelled while it waited
            job = store.get_job(project, job_id)
            kind = get_kind(job.kind)
            folder = job_dir(project, job_id)
            try:
                outcome = run_steps(
                    kind.steps(project, job), folder=folder, cwd=Path(project.root).resolve(), settings=self.settings,
                    stop=stop, on_start=lambda pid: store.update_job(project, job_id, pid=pid),
                    on_progress=lambda progress, tail: store.update_job(project, job_id, progress=progress, log=tail))
            except Exception as e:  # could not even start the command
                log.exception("job %s of project %s failed to start", job_id, project.name)
                outcome = Outcome(JobState.FAILED, None, f"{type(e).__name__}: {e}", "", job.progress)
            self._finish(project, job, outcome)
        finally:
            with self._lock:
                self._current = None

    def _finish(self, project: Project, job: Job, outcome: Outcome) -> None:
        kind = get_kind(job.kind)
        result = outcome.result
        if result is not None:
            result = {k: v for k, v in result.items() if k not in kind.hidden}
        extra = kind.extra(project, job)
        if extra:
            result = {**(result or {}), **extra}
        follow = self.follow_ups.get(job.kind)
        if outcome.state is JobState.DONE and follow is not None and result is not None:
            wanted = follow(project, job, result)
            if wanted is not None:
                next_job = store.create_job(project, kind=wanted[0], params=wanted[1], created_by=job.created_by)
                result = {**result, "follow_up_job": next_job.id}
                self._queue.put((project.name, next_job.id))
        progress = outcome.progress or job.progress
        if outcome.state is not JobState.DONE:
            progress = {**progress, "message": outcome.state.value}
        store.finish_job(project, job.id, outcome.state, result=result, error=outcome.error, log=outcome.log,
                         progress=progress)
        folder = job_dir(project, job.id)
        for sub in folder.iterdir() if folder.is_dir() else ():
            if sub.is_dir() and not sub.is_symlink():
                shutil.rmtree(sub, ignore_errors=True)
        if job.kind == "export" and outcome.state is JobState.DONE:
            self._prune_exports(project)

    def _prune_exports(self, project: Project) -> None:
        """Keep the newest ``job_keep_exports`` export zips of the project."""
        done = store.list_jobs(project, kind="export", states={JobState.DONE}, limit=1000)
        for old in done[max(0, self.settings.job_keep_exports):]:
            (job_dir(project, old.id) / EXPORT_ZIP).unlink(missing_ok=True)
