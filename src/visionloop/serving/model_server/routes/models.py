"""The served models: the list and one model's manifest summary with its batching settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from visionloop.serving.model_server.deps import ModelDep, ModelsDep
from visionloop.serving.model_server.schemas import ERROR_RESPONSES, ModelInfoOut, ModelListOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelListOut, summary="Served models")
async def list_models(models: ModelsDep) -> dict[str, Any]:
    return {"models": [m.summary() for m in models.values()]}


@router.get("/{name}", response_model=ModelInfoOut, summary="Model metadata", responses={404: ERROR_RESPONSES[404]})
async def model_info(model: ModelDep, request: Request) -> dict[str, Any]:
    follower = getattr(request.app.state, "follower", None)
    following = follower is not None and follower.settings.model == model.name
    return {**model.info(), "follows": follower.status() if following else None}
