"""Routes of the retrain-and-compare loop: its history (cycles, decisions, the deployment), one cycle and its
comparison report, and a new cycle started as a ``loop`` job (see :mod:`visionloop.active.loop`; the routes read
:mod:`visionloop.active.loop_state`, which trains nothing)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse

from visionloop.active.compare_report import cycle_report_path
from visionloop.active.loop_state import loop_history, loop_options
from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.job_schemas import JobPublic
from visionloop.serving.projects_api.loop_schemas import LoopCyclePublic, LoopHistoryPublic, LoopStartRequest
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.serving.projects_api.routes.runs import REPORT_CSP
from visionloop.storage import jobs as store
from visionloop.storage.jobs import JobState
from visionloop.storage.loop_cycles import get_cycle
from visionloop.storage.project import Project

__all__ = ["MAX_CYCLES", "router"]

router = APIRouter(prefix="/projects/{project}/loop", tags=["loop"], responses=ERROR_RESPONSES)

MAX_CYCLES = 500
"""Most cycles one history answer lists."""
_SETTINGS = ("min_new", "margin", "metric", "confidence", "resamples", "approved_only", "every_hours")


def _loop_job(project: Project) -> int | None:
    jobs = store.list_jobs(project, kind="loop", limit=5, states={JobState.QUEUED, JobState.RUNNING})
    return jobs[0].id if jobs else None


def _public(project: Project, cycle: dict[str, Any]) -> dict[str, Any]:
    return {**cycle, "report": cycle_report_path(project, cycle) is not None}


@router.get("", response_model=LoopHistoryPublic, summary="The loop's cycles (newest first), the deployed package "
            "and the last promotion")
def get_history(project: ProjectDep, limit: Annotated[int, Query(ge=1, le=MAX_CYCLES)] = 100) -> dict[str, Any]:
    data = loop_history(project, limit=limit)
    options = asdict(loop_options(project))
    last = data["last_promotion"]
    return {"cycles": [_public(project, c) for c in data["cycles"]], "deployment": data["deployment"],
            "last_promotion": _public(project, last) if last else None, "job": _loop_job(project),
            "settings": {k: options[k] for k in _SETTINGS}}


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Start a cycle of the loop in a job (forced by default); its progress names the stage")
def start_cycle(project: ProjectDep, user: AdminDep, queue: JobQueueDep,
                body: LoopStartRequest | None = None) -> JobPublic:
    running = _loop_job(project)
    if running is not None:
        raise ConflictError(f"loop job {running} is already queued or running; follow it on the Jobs page or cancel "
                            "it first")
    body = body or LoopStartRequest()
    params: dict[str, Any] = {"force": body.force, "trigger": "manual" if body.force else "count"}
    params.update({k: v for k, v in {"min_new": body.min_new, "margin": body.margin}.items() if v is not None})
    return job_public(queue.submit(project, kind="loop", params=params, created_by=user.name))


@router.get("/cycles/{cycle_id}", response_model=LoopCyclePublic, summary="One cycle of the loop")
def get_one(project: ProjectDep, cycle_id: int) -> dict[str, Any]:
    return _public(project, get_cycle(project, cycle_id).to_json())


@router.get("/cycles/{cycle_id}/report", response_class=FileResponse,
            responses={200: {"content": {"text/html": {}}, "description": "The self-contained comparison report."}},
            summary="The comparison report of a cycle: metrics side by side, per class, the CI, images that got "
                    "better and worse, why the decision")
def get_report(project: ProjectDep, cycle_id: int) -> FileResponse:
    cycle = get_cycle(project, cycle_id).to_json()
    path = cycle_report_path(project, cycle)
    if path is None:
        raise NotFoundError("comparison report of loop cycle", cycle_id,
                            hint=f"cycle {cycle_id} is {cycle['state']}: a report is written when a cycle decides")
    return FileResponse(Path(path), media_type="text/html", headers={"Content-Security-Policy": REPORT_CSP,
                                                                     "Cache-Control": "no-cache"})
