"""Prometheus metrics of the model server (text exposition format)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from visionloop.serving.model_server.deps import StateDep
from visionloop.serving.model_server.metrics import CONTENT_TYPE_LATEST

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def prometheus_metrics(state: StateDep) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
