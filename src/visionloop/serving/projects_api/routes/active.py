"""Active learning: ``GET /projects/{project}/next``, the unlabelled images to label next (reviewers and admins).

The ranking is :func:`visionloop.active.next.rank_unlabelled` with the project's deployed model (the one the
platform already holds; none deployed: the TypiClust cold start) and the stored embeddings (none yet: 409 saying to
queue the embed job). A request scores at most ``Settings.active_max_pool`` unlabelled images (a seeded sample of a
larger pool; ``visionloop next`` ranks them all). The work page creates a batch from the answer's ids, in order.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from visionloop.active.next import Diversity, Strategy, rank_unlabelled
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.active_schemas import NextPublic
from visionloop.serving.projects_api.auth import ReviewerDep
from visionloop.serving.projects_api.deps import ProjectDep, SettingsDep
from visionloop.serving.projects_api.routes.deployment import DeploymentsDep
from visionloop.serving.projects_api.routes.similar import DEFAULT_BACKBONE, Backbone
from visionloop.storage.embeddings import EmbeddingsMissingError

__all__ = ["MAX_NEXT", "router"]

router = APIRouter(prefix="/projects/{project}", tags=["active learning"], responses=ERROR_RESPONSES)

MAX_NEXT = 1000


@router.get("/next", response_model=NextPublic,
            summary="The unlabelled images to label next, most useful first (reviewers)")
def get_next(
    user: ReviewerDep, project: ProjectDep, deployments: DeploymentsDep, settings: SettingsDep,
    n: Annotated[int, Query(ge=1, le=MAX_NEXT, description="How many images.")] = 100,
    strategy: Annotated[Strategy, Query(description="auto: entropy with a deployed model, typiclust without.")]
    = Strategy.AUTO,
    diversity: Annotated[Diversity, Query(description="cluster or kcenter: no near-copies in one batch.")]
    = Diversity.CLUSTER,
    backbone: Backbone = DEFAULT_BACKBONE,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="Seeds random, the pool sample, clustering.")] = 0,
) -> dict[str, Any]:
    deployed = deployments.get(project) if strategy not in (Strategy.RANDOM, Strategy.TYPICLUST) else None
    try:
        out = rank_unlabelled(
            project, n=n, strategy=strategy, diversity=diversity, backbone=backbone, seed=seed,
            predictor=deployed.predictor if deployed else None, model_name=deployed.package if deployed else None,
            find_model=False, max_pool=settings.active_max_pool)
    except EmbeddingsMissingError as e:
        raise EmbeddingsMissingError(e.project, e.key, e.kind, hint=(
            f"queue the embed job first (POST /api/v1/projects/{project.name}/embeddings); it embeds only what is "
            "missing. Or ask with diversity=none or strategy=random, which need none")) from None
    return out.to_json()
