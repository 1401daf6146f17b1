"""Routes of a project's background jobs: list, one job (with its log tail), cancel, resume a training run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from visionloop.core.errors import ConflictError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.jobs import JobQueue
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import MAX_ID, ProjectDep
from visionloop.serving.projects_api.job_schemas import JobPublic
from visionloop.storage import jobs as store
from visionloop.storage.jobs import Job, JobState

__all__ = ["JobId", "JobQueueDep", "job_public", "router"]

router = APIRouter(prefix="/projects/{project}/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="Job id, as the job list gives it.")]


def get_job_queue(request: Request) -> JobQueue:
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "the job queue is not running: run the app with its lifespan")
    return jobs


JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]


def job_public(job: Job, *, with_log: bool = False) -> JobPublic:
    return JobPublic(id=job.id, kind=job.kind, state=job.state.value, progress=job.progress, params=job.params,
                     result=job.result, error=job.error, log=job.log if with_log else None,
                     created_by=job.created_by, created_at=job.created_at, started_at=job.started_at,
                     finished_at=job.finished_at)


@router.get("", response_model=list[JobPublic], response_model_exclude_none=False,
            summary="The project's jobs, newest first")
def list_jobs(
    project: ProjectDep,
    kind: Annotated[str | None, Query(description="Only jobs of this kind (import, export, train, ...).")] = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[JobPublic]:
    found = store.list_jobs(project, limit=limit, kind=kind, states={state} if state else None)
    return [job_public(j) for j in found]


@router.get("/{job_id}", response_model=JobPublic, summary="One job, with the tail of its log")
def get_job(project: ProjectDep, job_id: JobId) -> JobPublic:
    return job_public(store.get_job(project, job_id), with_log=True)


@router.post("/{job_id}/cancel", response_model=JobPublic,
             summary="Cancel a queued job, or stop a running one (SIGTERM, then SIGKILL after a grace period)")
def cancel_job(project: ProjectDep, job_id: JobId, user: AdminDep, queue: JobQueueDep) -> JobPublic:
    return job_public(queue.cancel(project, job_id, by=user.name))


@router.post("/{job_id}/resume", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Resume an interrupted, cancelled or failed training job's run from its last checkpoint")
def resume_job(project: ProjectDep, job_id: JobId, user: AdminDep, queue: JobQueueDep) -> JobPublic:
    job = store.get_job(project, job_id)
    run = (job.result or {}).get("run") or job.progress.get("run")
    if job.kind != "train" or not job.final or job.state is JobState.DONE or not run:
        raise ConflictError(f"job {job_id} ({job.kind}, {job.state.value}) cannot be resumed: only a training job "
                            "that ended before finishing, after its run started, can (start a new run instead)")
    new = queue.submit(project, kind="train", params={**job.params, "resume": run}, created_by=user.name)
    return job_public(new)
