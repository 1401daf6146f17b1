"""Outliers: the images least like the rest of the project, from its stored embeddings (the mean cosine distance to
their nearest images, as ``visionloop outliers`` ranks them), without those set aside (``dismissals``).

Like the other similarity searches it reads stored embeddings only: none yet answers 409 saying to queue the embed
job (``POST /projects/{project}/embeddings``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from visionloop.quality.duplicates import outliers as rank_outliers
from visionloop.quality.similarity import stored_index
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.label_error_schemas import OutliersPublic
from visionloop.serving.projects_api.routes.similar import DEFAULT_BACKBONE, Backbone, with_job_hint
from visionloop.storage.dismissals import list_dismissals
from visionloop.storage.embeddings import EmbeddingSet, EmbeddingsMissingError, backbone_key

__all__ = ["MAX_OUTLIERS", "router"]

router = APIRouter(prefix="/projects/{project}", tags=["similarity"], responses=ERROR_RESPONSES)

MAX_OUTLIERS = 500


@router.get("/outliers", response_model=OutliersPublic,
            summary="The images least like the rest (k-NN cosine distance of stored embeddings), most unusual first")
def get_outliers(
    project: ProjectDep,
    n: Annotated[int, Query(ge=1, le=MAX_OUTLIERS, description="How many images.")] = 50,
    k: Annotated[int, Query(ge=1, le=100, description="Neighbours the score averages over.")] = 10,
    backbone: Backbone = DEFAULT_BACKBONE,
) -> dict[str, Any]:
    key = backbone_key(backbone)
    set_aside = {d.image_ids[0] for d in list_dismissals(project, "outlier")}
    try:
        index, _ = stored_index(EmbeddingSet(project.root, key, "images"))
    except EmbeddingsMissingError as e:
        raise with_job_hint(e, project.name) from None
    found = [o for o in rank_outliers(index, n=n + len(set_aside), k=k) if o.id not in set_aside][:n]
    names = {im.id: im.name for im in project.images(ids=[o.id for o in found])} if found else {}
    return {"backbone": key, "k": k, "dismissed": len(set_aside),
            "results": [{**o.to_json(), "name": names.get(o.id, "")} for o in found if o.id in names]}
