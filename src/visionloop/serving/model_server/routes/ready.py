"""Readiness: every model is loaded and its batch workers run."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from visionloop.serving.model_server.deps import ModelsDep
from visionloop.serving.model_server.schemas import ReadyOut

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/ready", response_model=ReadyOut, summary="Readiness",
            responses={503: {"model": ReadyOut, "description": "Models still starting."}})
async def ready(models: ModelsDep) -> JSONResponse:
    state = {name: m.batcher.running for name, m in models.items()}
    ok = all(state.values())
    return JSONResponse({"ready": ok, "models": state}, status_code=200 if ok else 503)
