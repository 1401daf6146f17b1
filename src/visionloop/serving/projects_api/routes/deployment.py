"""Routes of the model deployed in a project: deploy a package (hot swap), see which one, roll back to the previous
one, download it as one archive (model servers following the project), predict an uploaded image, and the prediction
of a project image. Answers have the shape of the model server's (``Prediction.to_json``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from visionloop.core.errors import ImageError
from visionloop.inference.preannotate import at_package_thresholds, current_suggestion
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.model_server.schemas import PredictionOut
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deployments import Deployments
from visionloop.serving.projects_api.deps import ImageId, ProjectDep, SettingsDep
from visionloop.serving.projects_api.job_schemas import DeploymentPublic, DeployRequest

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}", tags=["deployment"], responses=ERROR_RESPONSES)


def get_deployments(request: Request) -> Deployments:
    found = getattr(request.app.state, "deployments", None)
    if found is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "deployments are not open: run the app with its "
                            "lifespan")
    return found


DeploymentsDep = Annotated[Deployments, Depends(get_deployments)]


@router.get("/deployment", response_model=DeploymentPublic, summary="The deployed package (package null: none)")
def get_deployment(project: ProjectDep, deployments: DeploymentsDep) -> dict[str, Any]:
    found = deployments.get(project)
    return found.to_json() if found is not None else {"package": None}


@router.post("/deployment", response_model=DeploymentPublic,
             summary="Deploy a package: loaded and checked while the old one serves, then swapped in")
def deploy(body: DeployRequest, project: ProjectDep, user: AdminDep, deployments: DeploymentsDep) -> dict[str, Any]:
    return deployments.deploy(project, body.package, by=user.name).to_json()


@router.post("/deployment/rollback", response_model=DeploymentPublic,
             summary="Deploy the previous package again (checked first; the current one becomes previous)")
def rollback(project: ProjectDep, user: AdminDep, deployments: DeploymentsDep) -> dict[str, Any]:
    return deployments.rollback(project, by=user.name).to_json()


@router.get("/deployment/package", response_class=FileResponse,
            summary="The deployed package as one .vlpkg archive (model servers that follow the project)",
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The archive; X-Package-Version names its version."}})
def deployed_package(project: ProjectDep, deployments: DeploymentsDep) -> FileResponse:
    deployed, path = deployments.archive(project)
    return FileResponse(path, media_type="application/zip", filename=f"{deployed.package}.vlpkg",
                        headers={"X-Package-Version": deployed.package_version or "",
                                 "Cache-Control": "no-store"})


@router.post("/predict", response_model=None, responses={200: {"model": PredictionOut}},
             summary="Predict an uploaded image (multipart field `file`) with the deployed model")
async def predict(project: ProjectDep, deployments: DeploymentsDep, settings: SettingsDep,
                  file: Annotated[UploadFile, File(description="The image.")]) -> dict[str, Any]:
    data = await file.read(settings.api_max_body_bytes + 1)
    deployed = await run_in_threadpool(deployments.require, project)
    try:
        prediction = await run_in_threadpool(deployed.predictor.predict, data)
    except ImageError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{file.filename or 'upload'}: {e.reason}") from None
    return prediction.to_json()


@router.get("/images/{image_id}/predictions", response_model=None, responses={200: {"model": PredictionOut}},
            summary="The deployed model's prediction of a project image (its stored suggestion when pre-annotated, "
                    "else predicted now and cached)")
def image_prediction(project: ProjectDep, deployments: DeploymentsDep, image_id: ImageId) -> dict[str, Any]:
    deployed = deployments.require(project)
    project.image(image_id)
    stored = current_suggestion(project, deployed.predictor, deployed.package, image_id)
    if stored is not None:
        return at_package_thresholds(stored.payload, stored.thresholds)
    return deployments.predict_image(project, image_id)
