"""Import from the browser: the dropped files (or one archive) are streamed to the project's staging folder and
imported by an import job, with the importer the CLI uses (``visionloop import``)."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status

from visionloop.formats import FORMATS
from visionloop.ingest.archives import ARCHIVE_SUFFIXES
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.jobs.kinds import JOBS_DIR, STAGING_PREFIX
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import ProjectDep, SettingsDep
from visionloop.serving.projects_api.job_schemas import JobPublic
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.serving.projects_api.upload_staging import stage_upload
from visionloop.storage.jobs import Job

__all__ = ["IMPORTS_PATH", "MAX_UPLOAD_FILES", "router"]

router = APIRouter(prefix="/projects/{project}/imports", tags=["imports"], responses=ERROR_RESPONSES)

IMPORTS_PATH = r"/api/v1/projects/[^/]+/imports"
"""Path pattern of the upload route: it takes bodies up to ``Settings.import_max_bytes``, not the API's limit."""
MAX_UPLOAD_FILES = 100_000

_UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "The files, each with its path relative to the dropped folder as its file name "
                                 "(cells/a.jpg, annotations.json), or one .zip / .tar.gz."},
        "format": {"type": "string", "description": "Format name; detected when left out."},
        "on_conflict": {"type": "string", "enum": ["first", "last", "merge"]},
    }}}}}}


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED, openapi_extra=_UPLOAD_BODY,
             summary="Upload files or an archive and import them in a job; its result is the import report")
async def start_import(request: Request, project: ProjectDep, user: AdminDep, settings: SettingsDep,
                       queue: JobQueueDep) -> JobPublic:
    queue.check_room()  # a full queue refuses before gigabytes are uploaded
    staging = Path(project.root) / JOBS_DIR / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
    staged = await stage_upload(request, staging, max_bytes=settings.import_max_bytes, max_files=MAX_UPLOAD_FILES)
    fmt = staged.fields.get("format") or None
    on_conflict = staged.fields.get("on_conflict") or "first"
    try:
        if fmt is not None and fmt not in FORMATS and fmt != "images":
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown format {fmt!r}; known: images, "
                                f"{', '.join(FORMATS)} (or leave it out to detect it)")
        if on_conflict not in ("first", "last", "merge"):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "on_conflict must be first, last or merge")
    except HTTPException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    one = staged.names[0] if len(staged.names) == 1 else None
    archive = one if one is not None and one.lower().endswith(ARCHIVE_SUFFIXES) else None

    def move_in(job: Job, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(staging, folder / "upload")

    try:
        job = queue.submit(project, kind="import", created_by=user.name, prepare=move_in, params={
            "source": f"upload/{archive}" if archive else "upload", "files": len(staged.names),
            "bytes": staged.bytes, "format": fmt, "on_conflict": on_conflict,
        })
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # moved into the job's folder, unless the job was refused
    return job_public(job)
