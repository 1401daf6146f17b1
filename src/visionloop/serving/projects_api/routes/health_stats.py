"""``GET /projects/{project}/health``: the dataset health page's figures (:mod:`visionloop.storage.health`) and the
embeddings stored for duplicates and outliers. Any user of the project may read it; nothing is computed that a job
computes (embeddings, label-error runs): what is missing is reported as missing."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.health_schemas import DatasetHealthPublic
from visionloop.serving.projects_api.routes.similar import list_embeddings
from visionloop.storage.health import dataset_health

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/health", tags=["dataset health"], responses=ERROR_RESPONSES)


@router.get("", response_model=DatasetHealthPublic,
            summary="Class balance, box sizes and aspects, folders, unlabelled share, review states, label errors, "
                    "duplicates")
def get_dataset_health(project: ProjectDep) -> DatasetHealthPublic:
    health = dataset_health(project).to_json()
    dup = health.pop("exact_duplicates")
    return DatasetHealthPublic(**health, duplicates={
        "exact_groups": dup["groups"], "exact_images": dup["images"], "embeddings": list_embeddings(project)})
