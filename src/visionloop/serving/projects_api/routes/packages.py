"""Routes of a project's model packages: the list (manifest summary, int8 cost and the guard's verdict) and exporting
a run as a package in a job (``visionloop export-model``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from visionloop.core.package import Manifest, PackageError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.jobs.kinds import public_guard
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deployments import DEPLOYMENT_FILE, list_package_dirs
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.job_schemas import JobPublic, PackagePublic, PackageRequest
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.serving.projects_api.run_records import GUARD_FILE, read_json
from visionloop.storage.project import Project
from visionloop.storage.runs import resolve_run, run_dir

__all__ = ["package_list", "router"]

router = APIRouter(prefix="/projects/{project}/packages", tags=["packages"], responses=ERROR_RESPONSES)


def package_list(project: Project, *, deployed: str | None) -> list[dict[str, Any]]:
    """Every package of ``PROJECT/packages``, newest first; a folder with a broken manifest is left out."""
    out = []
    for path in list_package_dirs(project):
        try:
            m = Manifest.from_json(read_json(path / "manifest.json") or {}, where=path.name)
        except PackageError:
            continue
        guard = None
        if m.int8 is not None and m.run_id:
            try:
                guard = public_guard(read_json(run_dir(project, m.run_id) / GUARD_FILE))
            except Exception:  # noqa: BLE001 - the run was removed: the manifest still says what int8 cost
                guard = None
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        out.append({"name": path.name, "task": str(m.task), "run": m.run_id, "dataset_version": m.dataset_version,
                    "precision": "int8" if m.int8 else "fp32", "classes": m.class_names, "metrics": m.metrics,
                    "main_metric": m.main_metric, "int8": m.int8.__dict__ if m.int8 else None, "int8_guard": guard,
                    "created_at": m.created_at, "size_bytes": size, "deployed": path.name == deployed})
    return sorted(out, key=lambda p: p["created_at"], reverse=True)


def _deployed_name(request: Request, project: Project) -> str | None:
    deployments = getattr(request.app.state, "deployments", None)
    active = deployments.get(project) if deployments is not None else None
    if active is not None:
        return active.package
    return (read_json(project.root / DEPLOYMENT_FILE) or {}).get("package")


@router.get("", response_model=list[PackagePublic], summary="The project's model packages, newest first")
def list_packages(request: Request, project: ProjectDep) -> list[dict[str, Any]]:
    return package_list(project, deployed=_deployed_name(request, project))


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Export a run as a model package in a job (int8: kept only when the guard passes; its verdict "
                     "is in the job's result)")
def start_package(body: PackageRequest, project: ProjectDep, user: AdminDep, queue: JobQueueDep) -> JobPublic:
    run = resolve_run(project, body.run)
    params = {"run": run, "int8": body.int8, "name": f"{run}-int8" if body.int8 else run}
    return job_public(queue.submit(project, kind="package", params=params, created_by=user.name))
