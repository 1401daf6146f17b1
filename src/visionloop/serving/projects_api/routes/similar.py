"""Similarity routes: images like an image ("more like this"), duplicate groups, and the embed job behind them.

The searches read the embeddings stored with the project (``PROJECT/embeddings``); they never compute any: with none
stored yet (or none for an image imported since) they answer 409 saying to run the embed job
(``POST /projects/{project}/embeddings``), which embeds only what is missing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from visionloop.quality.duplicates import LAYOUT_THRESHOLD, NEAR_DUPLICATE_THRESHOLD, project_duplicates
from visionloop.quality.similarity import similar_images
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import ImageId, ProjectDep
from visionloop.serving.projects_api.job_schemas import JobPublic
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.serving.projects_api.similar_schemas import (
    BACKBONE_PATTERN,
    DuplicatesPublic,
    EmbeddingSetPublic,
    EmbedRequest,
    SimilarPublic,
)
from visionloop.storage.embeddings import KINDS, EmbeddingSet, EmbeddingsMissingError, backbone_key, embedding_keys

__all__ = ["DEFAULT_BACKBONE", "MAX_SIMILAR", "Backbone", "router", "with_job_hint"]

router = APIRouter(prefix="/projects/{project}", tags=["similarity"], responses=ERROR_RESPONSES)

MAX_SIMILAR = 100
DEFAULT_BACKBONE = "tf_efficientnet_lite0"
Backbone = Annotated[str, Query(pattern=BACKBONE_PATTERN, description="Whose embeddings: a classifier name or "
                                "run:<run-id>.")]


def with_job_hint(e: EmbeddingsMissingError, project: str) -> EmbeddingsMissingError:
    """The error with the platform's way to fix it (an error with a hint of its own keeps it)."""
    if e.hint:
        return e
    return EmbeddingsMissingError(e.project, e.key, e.kind, hint=(
        f"queue the embed job first (POST /api/v1/projects/{project}/embeddings, or `visionloop embed` on the "
        "server); it embeds only what is missing"))


@router.get("/images/{image_id}/similar", response_model=SimilarPublic,
            summary="The images most like this one (cosine similarity of stored embeddings), best first")
def get_similar(project: ProjectDep, image_id: ImageId,
                k: Annotated[int, Query(ge=1, le=MAX_SIMILAR, description="How many images.")] = 10,
                backbone: Backbone = DEFAULT_BACKBONE) -> dict[str, Any]:
    try:
        return similar_images(project, backbone_key(backbone), image_id, k=k)
    except EmbeddingsMissingError as e:
        raise with_job_hint(e, project.name) from None


@router.get("/duplicates", response_model=DuplicatesPublic,
            summary="Exact duplicates (same bytes) and near-duplicate groups (embeddings, checked by layout)")
def get_duplicates(
    project: ProjectDep, backbone: Backbone = DEFAULT_BACKBONE,
    threshold: Annotated[float, Query(ge=0.5, le=1.0, description="Cosine from which two images are candidates.")]
    = NEAR_DUPLICATE_THRESHOLD,
    layout_threshold: Annotated[float, Query(ge=0.0, le=1.0, description="Layout agreement needed too (0: off).")]
    = LAYOUT_THRESHOLD,
) -> dict[str, Any]:
    try:
        return project_duplicates(project, backbone_key(backbone), threshold=threshold,
                                  layout_threshold=layout_threshold)
    except EmbeddingsMissingError as e:
        raise with_job_hint(e, project.name) from None


@router.get("/embeddings", response_model=list[EmbeddingSetPublic], summary="The embeddings stored with the project")
def list_embeddings(project: ProjectDep) -> list[dict[str, Any]]:
    out = []
    for key in embedding_keys(project.root):
        for kind in KINDS:
            m = EmbeddingSet(project.root, key, kind).manifest()
            if m is not None:
                out.append({"backbone": key, "kind": kind, "count": int(m["count"]), "dim": int(m["dim"])})
    return out


@router.post("/embeddings", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Queue the embed job: embeds the images (and boxes) that have no embedding yet")
def start_embedding(body: EmbedRequest, project: ProjectDep, user: AdminDep, queue: JobQueueDep) -> JobPublic:
    params = {"backbone": body.backbone} if body.backbone else {}
    return job_public(queue.submit(project, kind="embed", params=params, created_by=user.name))
