"""Pre-annotation routes: queue a job in which the project's model predicts its unlabelled images
(``visionloop preannotate``), and an image's stored suggestion of the deployed model for the editor to offer.

``GET .../images/{id}/predictions`` (``routes/deployment.py``) answers from the same stored suggestion when there is
one, at the package's thresholds, and predicts live otherwise.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.inference.preannotate import current_suggestion
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deployments import list_package_dirs
from visionloop.serving.projects_api.deps import ImageId, ProjectDep
from visionloop.serving.projects_api.job_schemas import JobPublic
from visionloop.serving.projects_api.routes.deployment import DeploymentsDep
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.serving.projects_api.suggestion_schemas import PreannotateRequest, SuggestionPublic
from visionloop.storage.runs import resolve_run

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}", tags=["suggestions"], responses=ERROR_RESPONSES)


@router.post("/preannotate", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Pre-annotate in a job: the model (the deployed package, another package, or a run) predicts "
                     "the images and its predictions are kept as suggestions")
def start_preannotation(body: PreannotateRequest, project: ProjectDep, user: AdminDep, queue: JobQueueDep,
                        deployments: DeploymentsDep) -> JobPublic:
    if body.package and body.run:
        raise ConflictError("name a package or a run, not both")
    params: dict[str, Any] = {"only_unlabelled": body.only_unlabelled}
    if body.limit is not None:
        params["limit"] = body.limit
    if body.run:
        params["run"] = resolve_run(project, body.run)
    else:
        name = body.package
        if name is None:
            deployed = deployments.get(project)
            if deployed is None:
                raise NotFoundError("deployed model", project.name,
                                    hint='deploy a package first, or name one: {"package": NAME}')
            name = deployed.package
        known = [d.name for d in list_package_dirs(project)]
        if name not in known:
            raise NotFoundError("package", name, choices=known or ["none yet: export one (POST .../packages)"])
        params["package"] = name
    return job_public(queue.submit(project, kind="preannotate", params=params, created_by=user.name))


@router.get("/images/{image_id}/suggestions", response_model=SuggestionPublic,
            summary="The deployed model's stored suggestion for an image (404: none yet, pre-annotate first)")
def image_suggestion(project: ProjectDep, deployments: DeploymentsDep, image_id: ImageId) -> dict[str, Any]:
    project.image(image_id)  # an unknown or deleted image is a 404 of its own
    deployed = deployments.require(project)
    found = current_suggestion(project, deployed.predictor, deployed.package, image_id)
    if found is None:
        raise NotFoundError("suggestion", f"image {image_id}, model {deployed.package}",
                            hint="pre-annotate the project with it first (POST .../preannotate)")
    return found.to_json()
