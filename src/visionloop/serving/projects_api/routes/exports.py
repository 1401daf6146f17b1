"""Export a dataset from the browser: an export job writes the format (``visionloop export``) and zips it; the zip
is downloaded with a GET, so a link carrying the session cookie works."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import FileResponse

from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.formats import FORMATS
from visionloop.formats._paths import safe_export_name
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.jobs.kinds import EXPORT_ZIP, job_dir
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.job_schemas import ExportRequest, JobPublic
from visionloop.serving.projects_api.routes.jobs import JobId, JobQueueDep, job_public
from visionloop.storage import jobs as store
from visionloop.storage.jobs import JobState
from visionloop.storage.versions import get_version

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/exports", tags=["exports"], responses=ERROR_RESPONSES)

_ZIP: dict[int | str, dict[str, Any]] = {200: {"content": {"application/zip": {}}, "description": "The export."}}


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Export the annotations and images in a format, in a job (download the zip when it is done)")
def start_export(body: ExportRequest, project: ProjectDep, user: AdminDep, queue: JobQueueDep) -> JobPublic:
    if body.format not in FORMATS:
        raise NotFoundError("format", body.format, choices=list(FORMATS))
    if body.version is not None:
        get_version(project, body.version)  # an unknown version is a 404 now, not a failed job later
    job = queue.submit(project, kind="export", params=body.model_dump(), created_by=user.name)
    return job_public(job)


@router.get("/{job_id}/download", response_class=FileResponse, responses=_ZIP,
            summary="The zip an export job made")
def download_export(project: ProjectDep, job_id: JobId) -> FileResponse:
    job = store.get_job(project, job_id)
    if job.kind != "export":
        raise NotFoundError("export job", job_id, hint=f"job {job_id} is a {job.kind} job")
    if job.state is not JobState.DONE:
        raise ConflictError(f"export job {job_id} is {job.state.value}; download it when it is done")
    path = job_dir(project, job_id) / EXPORT_ZIP
    if not path.is_file():
        raise NotFoundError("export file", job_id, hint="it was removed from the server; export again")
    version = job.params.get("version")
    name = safe_export_name(f"{project.name}-{job.params['format']}{'-' + version if version else ''}-{job_id}.zip")
    return FileResponse(path, media_type="application/zip", filename=name)
