"""Routes of a project's training runs: start one (a training job), list them with their main metrics, one run's
config and metrics, its per-epoch history, its HTML report, and a comparison of two runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.core.task import Task
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.job_schemas import (
    JobPublic,
    RunComparePublic,
    RunDetailPublic,
    RunPublic,
    TrainRequest,
)
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.serving.projects_api.run_records import (
    REPORT_FILE,
    compare_runs,
    run_detail,
    run_history,
    runs_summaries,
)
from visionloop.storage import jobs as store
from visionloop.storage.jobs import JobState
from visionloop.storage.project import Project
from visionloop.storage.runs import resolve_run, run_dir
from visionloop.storage.versions import get_version

__all__ = ["REPORT_CSP", "router", "training_jobs"]

router = APIRouter(prefix="/projects/{project}/runs", tags=["runs"], responses=ERROR_RESPONSES)

REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
"""The report is self-contained (inline styles, data: images, no script); nothing else may load or run in it."""

class HistoryPublic(BaseModel):
    run: str
    series: dict[str, list[float | int | None]] = Field(description="Columns per epoch: epoch, train_loss, lr and "
                                                        "every val_* metric (null where an epoch did not log it).")
    best_epoch: int | None
    epoch_seconds: list[float | None]


class EvaluateRequest(BaseModel):
    split: str = Field(default="test", pattern="^(train|val|test)$")


def training_jobs(project: Project) -> dict[str, int]:
    """Run id -> id of the queued or running training job of the run (its progress names it, or it resumes it)."""
    active = store.list_jobs(project, limit=50, states={JobState.QUEUED, JobState.RUNNING})
    out: dict[str, int] = {}
    for job in active:
        run = job.progress.get("run") or job.params.get("resume") or job.params.get("run")
        if run and job.kind == "train":
            out[str(run)] = job.id
    return out


@router.get("", response_model=list[RunPublic], summary="The project's training runs, newest first")
def list_runs(project: ProjectDep) -> list[dict[str, Any]]:
    return runs_summaries(project, running=training_jobs(project))


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Train a model on a dataset version, in a job (the run id appears in its progress)")
def start_training(body: TrainRequest, project: ProjectDep, user: AdminDep, queue: JobQueueDep) -> JobPublic:
    get_version(project, body.version)  # an unknown version is a 404 now, not a failed job later
    if body.strategy not in (None, "auto") and project.task not in (Task.CLASSIFICATION, Task.TAGGING):
        raise ConflictError(f"strategy {body.strategy!r} applies to classification and tagging; a {project.task.value} "
                            "model is always fine-tuned end to end: leave strategy out")
    params = body.model_dump(exclude_none=True, exclude_defaults=True) | {"version": body.version}
    return job_public(queue.submit(project, kind="train", params=params, created_by=user.name))


@router.get("/compare", response_model=RunComparePublic,
            summary="Config differences, metric changes (b - a) and per class metrics of two runs")
def compare(project: ProjectDep, a: Annotated[str, Query(description="Run id.")],
            b: Annotated[str, Query(description="Run id.")]) -> dict[str, Any]:
    return compare_runs(project, a, b)


@router.get("/{run_id}", response_model=RunDetailPublic, summary="One run: config, result, evaluation, int8 guard")
def get_run(project: ProjectDep, run_id: str) -> dict[str, Any]:
    return run_detail(project, run_id, running=training_jobs(project))


@router.get("/{run_id}/history", response_model=HistoryPublic,
            summary="Per-epoch train loss and validation metrics (the run's metrics log), for curves")
def get_history(project: ProjectDep, run_id: str) -> dict[str, Any]:
    return run_history(project, run_id)


@router.get("/{run_id}/report", response_class=FileResponse,
            responses={200: {"content": {"text/html": {}}, "description": "The self-contained HTML report."}},
            summary="The HTML report `visionloop evaluate` wrote (made by the evaluate job that follows training "
                    "from the page, or by POST .../evaluate)")
def get_report(project: ProjectDep, run_id: str) -> FileResponse:
    rid = resolve_run(project, run_id)
    path = run_dir(project, rid) / REPORT_FILE
    if not path.is_file():
        waiting = [j for j in store.list_jobs(project, kind="evaluate", limit=50,
                                              states={JobState.QUEUED, JobState.RUNNING}) if j.params.get("run") == rid]
        hint = (f"evaluate job {waiting[0].id} is {waiting[0].state.value} and will write it" if waiting else
                f"an admin makes it with POST .../runs/{rid}/evaluate (or: visionloop evaluate PROJECT --run {rid})")
        raise NotFoundError("report of run", rid, hint=hint)
    return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": REPORT_CSP,
                                                               "Cache-Control": "no-cache"})


@router.post("/{run_id}/evaluate", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Evaluate a run on a split in a job; writes its report")
def start_evaluation(project: ProjectDep, run_id: str, user: AdminDep, queue: JobQueueDep,
                     body: EvaluateRequest | None = None) -> JobPublic:
    rid = resolve_run(project, run_id)
    params = {"run": rid, "split": (body or EvaluateRequest()).split}
    return job_public(queue.submit(project, kind="evaluate", params=params, created_by=user.name))
